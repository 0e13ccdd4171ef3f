"""Pictures of what a global-context head sees, always beside the input and the prediction.

    python tools/analysis/visualize.py CONFIG [CHECKPOINT] [--img PATH | --demo-index N]
        [--queries y,x ...] --out-dir DIR [--cfg-options k=v ...]

(the command line over :func:`visualize`).
Without a checkpoint the model keeps its random initialisation (for tests). Without --img the
image is ``data/synthetic_context/img_dir/val/NNNN.png`` (make it with
``python tools/make_demo_data.py``). One PNG per picture kind, named after the config:

* ``<config>_affinity.png`` (NonLocalHead, ARNLHead, NSHead, SNLHead, GSNLHead, or any head
  containing their blocks): for each query pixel, its row of the affinity A over the image
  (the keys' map upsampled bilinearly to the image, overlaid, the query marked with a cross),
  and for ARNLB the map of lambda (the per-position inverse temperature).
  Default queries: the pixel nearest the centroid of the largest connected predicted region
  of a class other than 0 (background), and the image centre.
* ``<config>_atoms.png`` (Hamburger): the atom each pixel is assigned to, argmax_r of the
  final codes C (first group when MD_S > 1), as a colour map.
* ``<config>_nltv.png`` (NLTVHead): the base head's prediction (plain softmax), the
  prediction after the NLTV regularisation, and the pixels where they differ.
* ``<config>_prediction.png`` for any other head: input and prediction.

How the pictures are computed. The block input X is captured with a forward pre-hook; the
affinity rows are then the block's own ``dense_affinity(X, queries)`` (every NL-family block:
the exact A its forward applies, from its dense reference path, only the query rows; SNL/gSNL
rows without forming N x N) reshaped to the block's ``key_grid(X)`` (the pooled grid when
NonLocalBlock sub-samples its keys); ARNLB's lambda is its ``adaptive_weight(X)``. Hamburger's
codes are the ham's public ``factorize`` of its input (captured with a pre-hook; in eval mode
the bases are deterministic, so these are the forward's codes); the NLTV base logits by a
forward hook on ``base_head``. The model runs in eval mode (deterministic Hamburger bases;
NLTV iterates to its stopping test).
"""
from __future__ import annotations

import contextlib
import math
import os
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F

#: the repository root (the checkout of an editable install), where the demo data lies
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_VAL_DIR = osp.join(ROOT, 'data', 'synthetic_context_64x64', 'img_dir', 'val')
#: Panel geometry: each panel shows the image scaled by an integer factor to at least this
#: many pixels on its longer side, under a title band of TITLE_PX pixels.
MIN_PANEL_PX = 256
TITLE_PX = 40
MAX_COLUMNS = 5
DPI = 100

__all__ = ['visualize', 'query_affinity', 'lambda_map', 'atom_assignment', 'default_queries',
           'figure_size']


# ------------------------------------------------------------------------------ the maps
def _blocks():
    from nlseg.models.blocks import Hamburger, NonLocalBase
    return Hamburger, NonLocalBase


@torch.no_grad()
def query_affinity(block: torch.nn.Module, x: torch.Tensor,
                   index: Sequence[int]) -> torch.Tensor:
    """Rows of the block's affinity A for the query positions ``index`` (flat indices into
    the (h, w) grid of ``x``, first image of the batch), shape (Q, kh, kw) on the block's
    ``key_grid`` (the pooled grid when NonLocalBlock sub-samples its keys).

    ``block`` is any NL-family block (:class:`~nlseg.models.blocks.NonLocalBase`: NL in every
    mode, ARNLB, NS, SNL/gSNL); ``x`` its input (B, C, h, w). The rows are the block's
    ``dense_affinity(x, queries=index)``.
    """
    _, NonLocalBase = _blocks()
    if not isinstance(block, NonLocalBase):
        raise TypeError(f'query_affinity needs an NL-family block (NonLocalBase), got '
                        f'{type(block).__name__}')
    x = x[:1]
    rows = block.dense_affinity(x, queries=list(index))[0]
    return rows.reshape(len(rows), *block.key_grid(x))


@torch.no_grad()
def lambda_map(block: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ARNLB's lambda (inverse temperature) per position of ``x``'s first image, (h, w)."""
    return block.adaptive_weight(x[:1])[0, :, 0].reshape(x.shape[2:])


def atom_assignment(codes: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """argmax over atoms of Hamburger codes (B * S, n, r) -> (h, w) for the first group."""
    return codes[0].argmax(dim=-1).reshape(hw)


def default_queries(pred: np.ndarray) -> list[tuple[int, int]]:
    """(y, x) queries: the pixel of the largest connected non-background (class != 0)
    predicted region nearest its centroid, and the image centre."""
    from scipy import ndimage
    h, w = pred.shape
    centre = (h // 2, w // 2)
    queries = []
    labels, count = ndimage.label(pred != 0)
    if count:
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=range(1, count + 1))
        ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
        k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
        queries.append((int(ys[k]), int(xs[k])))
    if not queries or max(abs(queries[0][0] - centre[0]), abs(queries[0][1] - centre[1])) > 2:
        queries.append(centre)
    else:
        queries.append((h // 4, w // 4))
    return queries


# ------------------------------------------------------------------------------ running
def _load_image(image, demo_index: int) -> tuple[np.ndarray, str]:
    """RGB uint8 (H, W, 3) and a label for it."""
    import mmcv
    if image is None:
        image = osp.join(DEMO_VAL_DIR, f'{demo_index:04d}.png')
        if not osp.isfile(image):
            raise FileNotFoundError(f'demo image {image} does not exist: run '
                                    '`python tools/make_demo_data.py` or pass --img')
    if isinstance(image, str):
        if not osp.isfile(image):
            raise FileNotFoundError(f'image {image} does not exist')
        return mmcv.imread(image, channel_order='rgb'), osp.basename(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f'image must be a path or an (H, W, 3) RGB array, got {arr.shape}')
    return arr.astype(np.uint8), 'array'


@contextlib.contextmanager
def _captures(model):
    """Hooks on the head's context blocks; yields a dict filled during the forward."""
    Hamburger, NonLocalBase = _blocks()
    from nlseg.models.decode_heads import NLTVHead
    head = model.decode_head
    found, handles = {}, []
    for name, module in head.named_modules():
        if isinstance(module, NonLocalBase) and 'nl' not in found:
            found['nl'] = dict(block=module, name=name)
            handles.append(module.register_forward_pre_hook(
                lambda m, args: found['nl'].__setitem__('x', args[0])))
        elif isinstance(module, Hamburger) and 'ham' not in found:
            found['ham'] = dict(block=module, name=name)
            handles.append(module.ham.register_forward_pre_hook(
                lambda m, args: found['ham'].update(x=args[0], hw=tuple(args[0].shape[2:]))))
    if isinstance(head, NLTVHead):
        found['nltv'] = {}
        handles.append(head.base_head.register_forward_hook(
            lambda m, args, out: found['nltv'].__setitem__('base_logits', out)))
    try:
        yield found
    finally:
        for handle in handles:
            handle.remove()


def _to_image(feature_map: torch.Tensor, padded: tuple[int, int],
              size: tuple[int, int]) -> np.ndarray:
    """(h, w) or (C, h, w) map on the padded input grid -> image-sized numpy (crop bottom/right
    padding, as mmseg pads)."""
    t = feature_map.float()
    t = t[None, None] if t.dim() == 2 else t[None]
    t = F.interpolate(t, size=padded, mode='bilinear', align_corners=False)
    return t[0, :, :size[0], :size[1]].squeeze(0).cpu().numpy()


def _feature_index(query: tuple[int, int], padded: tuple[int, int],
                   hw: tuple[int, int]) -> int:
    fy = min(hw[0] - 1, int(query[0] * hw[0] / padded[0]))
    fx = min(hw[1] - 1, int(query[1] * hw[1] / padded[1]))
    return fy * hw[1] + fx


# ------------------------------------------------------------------------------ drawing
def figure_size(image_hw: tuple[int, int], n_panels: int) -> tuple[int, int]:
    """(height, width) in pixels of a PNG of ``n_panels`` panels for an image of
    ``image_hw``: up to MAX_COLUMNS panels a row, each the image scaled by the integer
    factor that brings its longer side to >= MIN_PANEL_PX, under a TITLE_PX title band."""
    scale = max(1, math.ceil(MIN_PANEL_PX / max(image_hw)))
    cols = min(n_panels, MAX_COLUMNS)
    rows = math.ceil(n_panels / MAX_COLUMNS)
    return rows * (image_hw[0] * scale + TITLE_PX), cols * image_hw[1] * scale


def _palette(model, num_classes: int) -> tuple[np.ndarray, list]:
    meta = getattr(model, 'dataset_meta', None) or {}
    palette = meta.get('palette')
    if palette is None:
        try:
            from mmseg.registry import DATASETS
            dataset_type = model.cfg.train_dataloader.dataset.type
            palette = DATASETS.get(dataset_type).METAINFO.get('palette')
            meta = DATASETS.get(dataset_type).METAINFO
        except Exception:  # no dataset in the config, or it has no palette
            palette = None
    if palette is None or len(palette) < num_classes:
        import matplotlib
        cmap = matplotlib.colormaps['tab20']
        palette = [[int(255 * c) for c in cmap(i % 20)[:3]] for i in range(num_classes)]
        meta = {}
    classes = meta.get('classes') or [str(i) for i in range(num_classes)]
    return np.asarray(palette[:num_classes], dtype=np.uint8), list(classes)


def _heat(values: np.ndarray, image: np.ndarray, cmap: str, alpha: float = 0.6):
    import matplotlib
    lo, hi = float(values.min()), float(values.max())
    norm = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    heat = matplotlib.colormaps[cmap](norm)[..., :3]
    return ((1 - alpha) * image / 255.0 + alpha * heat).clip(0, 1), (lo, hi)


def _save_panels(path: str, image_hw: tuple[int, int], panels: list[dict]) -> str:
    """Each panel: title, rgb (H, W, 3) array, optional markers [(y, x)], optional
    colorbar (cmap, lo, hi), optional legend [(name, rgb)]."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig_h, fig_w = figure_size(image_hw, len(panels))
    scale = max(1, math.ceil(MIN_PANEL_PX / max(image_hw)))
    ph, pw = image_hw[0] * scale, image_hw[1] * scale
    fig = plt.figure(figsize=(fig_w / DPI, fig_h / DPI), dpi=DPI)
    for i, panel in enumerate(panels):
        row, col = divmod(i, MAX_COLUMNS)
        bottom = fig_h - (row + 1) * (ph + TITLE_PX)
        ax = fig.add_axes((col * pw / fig_w, bottom / fig_h, pw / fig_w, ph / fig_h))
        ax.imshow(panel['rgb'], interpolation='nearest', aspect='auto',
                  extent=(-0.5, image_hw[1] - 0.5, image_hw[0] - 0.5, -0.5))
        ax.set_axis_off()
        fig.text((col * pw + pw / 2) / fig_w, (bottom + ph + TITLE_PX / 2) / fig_h,
                 panel['title'], ha='center', va='center', fontsize=7)
        for y, x in panel.get('markers', []):
            ax.plot([x], [y], marker='X', markersize=10, color='red',
                    markeredgecolor='white', markeredgewidth=1.5)
        if 'colorbar' in panel:
            cmap, lo, hi = panel['colorbar']
            cax = ax.inset_axes((0.9, 0.05, 0.04, 0.4))
            mappable = matplotlib.cm.ScalarMappable(
                norm=matplotlib.colors.Normalize(lo, hi if hi > lo else lo + 1e-12), cmap=cmap)
            bar = fig.colorbar(mappable, cax=cax)
            bar.set_ticks([lo, hi])
            bar.set_ticklabels([f'{lo:.3g}', f'{hi:.3g}'])
            cax.yaxis.set_ticks_position('left')  # labels inside the panel
            bar.ax.tick_params(labelsize=6, colors='white', length=2)
        if panel.get('legend'):
            handles = [Patch(color=np.asarray(c) / 255.0, label=n) for n, c in panel['legend']]
            ax.legend(handles=handles, loc='lower left', fontsize=6, framealpha=0.7)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _colour(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    return palette[np.clip(labels, 0, len(palette) - 1)]


def _pred_panel(title: str, pred: np.ndarray, palette: np.ndarray, classes: list,
                image: np.ndarray) -> dict:
    """Class colours blended over the image (the image stays readable under them)."""
    present = [int(c) for c in np.unique(pred)]
    rgb = (0.3 * image + 0.7 * _colour(pred, palette)).astype(np.uint8)
    return dict(title=title, rgb=rgb,
                legend=[(classes[c] if c < len(classes) else str(c), palette[c])
                        for c in present if c < len(palette)])


# ------------------------------------------------------------------------------ entry point
def visualize(config, checkpoint: Optional[str] = None,
              image: Union[str, np.ndarray, None] = None, out_dir: str = 'work_dirs/vis',
              queries: Optional[Sequence[tuple[int, int]]] = None, demo_index: int = 0,
              cfg_options: Optional[dict] = None, name: Optional[str] = None) -> list[str]:
    """Write the head's pictures (see the module docstring) and return their paths.

    Args:
        config: config path (or mmengine Config). checkpoint: weights (None: random init).
        image: path, or an (H, W, 3) RGB uint8 array; None: the demo val image
            ``demo_index``.
        out_dir: output folder. queries: (y, x) image pixels for the affinity maps
            (default :func:`default_queries` of the prediction).
        cfg_options: config overrides. name: file name prefix (default: config name).
    """
    from mmseg.structures import SegDataSample

    from nlseg.utils.complexity import build_eval_segmentor
    model = build_eval_segmentor(config, checkpoint, cfg_options)
    if name is None:
        name = osp.splitext(osp.basename(config))[0] if isinstance(config, str) else 'model'
    rgb, image_label = _load_image(image, demo_index)
    size = rgb.shape[:2]
    data = dict(inputs=[torch.from_numpy(np.ascontiguousarray(rgb[..., ::-1])).permute(2, 0, 1)],
                data_samples=[SegDataSample(metainfo=dict(ori_shape=size, img_shape=size))])
    with torch.no_grad(), _captures(model) as found:
        data = model.data_preprocessor(data, False)
        result = model.predict(data['inputs'], data['data_samples'])[0]
    padded = tuple(data['inputs'].shape[2:])
    pred = result.pred_sem_seg.data[0].cpu().numpy().astype(np.int64)
    num_classes = int(result.seg_logits.data.shape[0])
    palette, classes = _palette(model, max(num_classes, 2))
    base = [dict(title=f'input ({image_label}, {size[0]}x{size[1]})', rgb=rgb),
            _pred_panel('prediction', pred, palette, classes, rgb)]
    paths = []

    if 'nl' in found and 'x' in found['nl']:
        block, x = found['nl']['block'], found['nl']['x']
        qs = [tuple(map(int, q)) for q in (queries or default_queries(pred))]
        for y, xq in qs:
            if not (0 <= y < size[0] and 0 <= xq < size[1]):
                raise ValueError(f'query ({y}, {xq}) lies outside the {size[0]}x{size[1]} image')
        hw = tuple(x.shape[2:])
        rows = query_affinity(block, x, [_feature_index(q, padded, hw) for q in qs])
        panels = list(base)
        panels[0] = dict(base[0], markers=qs)
        kind = type(block).__name__
        for q, row in zip(qs, rows):
            values = _to_image(row, padded, size)
            overlay, (lo, hi) = _heat(values, rgb, 'jet')
            panels.append(dict(title=f'affinity row of query (y={q[0]}, x={q[1]})\n'
                               f'{kind}, keys {row.shape[0]}x{row.shape[1]}',
                               rgb=overlay, markers=[q], colorbar=('jet', lo, hi)))
        if hasattr(block, 'adaptive_weight'):
            values = _to_image(lambda_map(block, x), padded, size)
            overlay, (lo, hi) = _heat(values, rgb, 'viridis', alpha=0.85)
            panels.append(dict(title='ARNLB lambda (inverse temperature)\n'
                               f'min {lo:.3g}, max {hi:.3g}', rgb=overlay,
                               colorbar=('viridis', lo, hi)))
        paths.append(_save_panels(osp.join(out_dir, f'{name}_affinity.png'), size, panels))

    if 'ham' in found and 'x' in found['ham']:
        ham = found['ham']['block'].ham
        # the ham's public factorisation of its captured input: in eval mode the same
        # deterministic bases, so the same codes as the forward that was drawn
        codes, hw = ham.factorize(found['ham']['x'])[1], found['ham']['hw']
        atoms = atom_assignment(codes, hw)
        r = codes.shape[-1]
        # nearest upsampling of the integer map to the (padded) input, then crop
        up = F.interpolate(atoms[None, None].float(), size=padded, mode='nearest')
        up = up[0, 0, :size[0], :size[1]].long().numpy()
        import matplotlib
        cmap = matplotlib.colormaps['tab20' if r <= 20 else 'gist_ncar']
        colours = (np.array([cmap(i / max(1, r - 1) if r > 20 else i)[:3]
                             for i in range(r)]) * 255).astype(np.uint8)
        used = len(np.unique(atoms.numpy()))
        panels = base + [dict(title=f'{type(ham).__name__}: atom of each pixel (argmax codes)\n'
                              f'{used} of {r} atoms used, grid {hw[0]}x{hw[1]}'
                              + (f', group 1 of {ham.S}' if ham.S > 1 else ''),
                              rgb=_colour(up, colours))]
        paths.append(_save_panels(osp.join(out_dir, f'{name}_atoms.png'), size, panels))

    if 'nltv' in found and 'base_logits' in found['nltv']:
        before = _to_image(found['nltv']['base_logits'][0], padded, size)
        before = (before.argmax(0) if before.ndim == 3 else (before > 0)).astype(np.int64)
        changed = before != pred
        diff = np.where(changed[..., None], np.array([255, 0, 255], np.uint8),
                        (rgb * 0.4).astype(np.uint8))
        panels = [base[0], _pred_panel('before NLTV (base head softmax)', before, palette,
                                       classes, rgb),
                  _pred_panel('after NLTV regularisation', pred, palette, classes, rgb),
                  dict(title=f'changed pixels: {int(changed.sum())} '
                             f'({100 * changed.mean():.1f}%)', rgb=diff)]
        paths.append(_save_panels(osp.join(out_dir, f'{name}_nltv.png'), size, panels))

    if not paths:
        paths.append(_save_panels(osp.join(out_dir, f'{name}_prediction.png'), size, base))
    return paths
