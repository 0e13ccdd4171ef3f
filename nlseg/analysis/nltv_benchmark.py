"""Benchmark of the NLTV-regularised softmax, each measurement in a fresh process.

    python tools/analysis/benchmark_nltv.py [--device cpu] [--threads N] [--skip-large]
        [--sections parts,graph,recipe] [--real-data DIR]

Prints (markdown), by section:

``parts``
    1. kNN graph construction (features C = 512 and C = 21) and 10 solver iterations at a
       64 x 64 logit map, K = 21 classes, k = 10 (median time of 3 runs after a warm-up).
    2. Peak memory and time of one training step at 64 x 64, K = 21, k = 10, for train_iters
       1, 5, 10 and grad = 'bptt' | 'one_step': of NLTVSoftmax (graph from C = 512
       features, learnt through the weights, forward + backward of a loss on log A), and of
       the solver alone (graph built beforehand, gradient to the logits only).
    3. Peak memory of graph construction at a 128 x 256 map (Cityscapes at output stride 8),
       C = 512 and C = 19, k = 10, no autograd.
``graph``
    The paper's image graph (colours, eq. 11) by the dense and the windowed search: a WBC
    image (300 x 300, d = 20) and a CamVid image (360 x 480, d = 10), with the windowed
    search's proof statistics and a check that both searches give the same graph; and the
    windowed search of a 1024 x 2048 (Cityscapes) image, d = 10: time and peak memory. The
    images are the published ones under ``--real-data`` (or ``$NLSEG_REAL_DATA``: folders
    ``wbc-dataset2/`` and ``camvid-segnet/``), else smooth random images of the same size.
``recipe``
    One training step of the WBC recipe's network (U-Net s5-d16, batch 3, K = 3) plain, with
    the local TV softmax (4-neighbour grid) and with NLTV (image graph, d = 20, train_iters =
    3, grad 'bptt'), at 64 x 64, 300 x 300 and 360 x 480: time (median of 2 after the first)
    and peak memory (the first step); and the test-time solve of one image (the paper's rule:
    at most 1500 iterations or relative gap 1e-5, tested every 10 iterations).

Memory: peak = on CPU the peak resident set (VmHWM, reset through /proc/self/clear_refs)
above the resident set before the measured call (inputs allocated, first call in the
process), on CUDA torch.cuda.max_memory_allocated above the allocation before the call;
saved = bytes of the distinct storages autograd saves for backward (deterministic).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Optional

from nlseg.analysis import benchmark
from nlseg.analysis.benchmark import ROOT, PeakMemory, sync

__all__ = ['child', 'spawn', 'measure_step', 'load_image', 'image_graph', 'nltv_parts',
           'recipe_step', 'real_images', 'main', 'RECIPE_CONFIGS']


def timed(fn: Callable[[], Any], device: Any, repeats: int = 3) -> float:
    """Median milliseconds of ``repeats`` calls of ``fn`` after one warm-up call."""
    return benchmark.timed(fn, device, 1, repeats) * 1e3


def measure_step(forward: Callable[[], Any], mem: PeakMemory, device: Any) -> dict:
    """Peak memory of the first training step (forward, loss, backward) in this fresh process,
    the bytes autograd saves for backward, and the time of a second step."""
    import torch
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    def step():
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = forward()
        out.float().square().mean().backward()

    mem.start()
    step()
    mb = mem.peak_mb()
    t0 = time.perf_counter()
    step()
    sync(device)
    return dict(mb=mb, saved_mb=sum(saved.values()) / 2**20,
                ms=(time.perf_counter() - t0) * 1e3)


def child(spec: dict) -> dict:
    """The measurement ``spec['kind']`` in this process (see the module docstring)."""
    import torch
    from nlseg.models import NLTVSoftmax
    from nlseg.ops import knn_graph, nltv_softmax

    torch.manual_seed(0)
    if spec.get('threads'):
        torch.set_num_threads(spec['threads'])
    device = torch.device(spec['device'])
    mem = PeakMemory(device)
    kind = spec['kind']
    if kind == 'image_graph':
        return image_graph(spec, device, mem)
    if kind == 'recipe_step':
        return recipe_step(spec, device, mem)
    if kind == 'nltv_parts':
        return nltv_parts(spec, device, mem)
    h, w, c, ncls, k = spec['h'], spec['w'], spec['c'], spec['classes'], spec['k']
    feats = torch.randn(1, c, h, w, device=device)
    logits = torch.randn(1, ncls, h, w, device=device)
    if kind == 'graph_time':
        with torch.no_grad():
            return dict(ms=timed(lambda: knn_graph(feats, k=k), device))
    if kind == 'solver_time':
        index, weight = knn_graph(feats, k=k)
        with torch.no_grad():
            return dict(ms=timed(lambda: nltv_softmax(logits, index, weight, iters=10,
                                                      tol=None), device))
    if kind == 'graph_memory':
        mem.start()
        with torch.no_grad():
            t0 = time.perf_counter()
            knn_graph(feats, k=k)
            sync(device)
            ms = (time.perf_counter() - t0) * 1e3
        return dict(mb=mem.peak_mb(), ms=ms)
    if kind == 'train_step':
        block = NLTVSoftmax(k=k, train_iters=spec['iters'], grad=spec['grad'],
                            feature_norm='l2').to(device).train()
        feats.requires_grad_(True)
        logits.requires_grad_(True)
        return measure_step(lambda: block(logits, feats, log=True), mem, device)
    if kind == 'solver_step':
        index, weight = knn_graph(feats, k=k)
        logits.requires_grad_(True)
        return measure_step(lambda: nltv_softmax(logits, index, weight, iters=spec['iters'],
                                                 tol=None, grad=spec['grad'], log=True),
                            mem, device)
    raise ValueError(kind)


def load_image(spec: dict, device: Any) -> Any:
    """The spec's image as (1, 3, H, W) colours in [0, 1]: the published file when given,
    else a smooth random image (bilinear upsampling of 1/10 size noise, plus 1 % noise)."""
    import torch
    import torch.nn.functional as F
    h, w = spec['h'], spec['w']
    if spec.get('path'):
        import mmcv
        img = mmcv.imread(spec['path'], channel_order='rgb')[:h, :w]
        return torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float().div(255).to(device)
    g = torch.Generator().manual_seed(0)
    x = F.interpolate(torch.rand(1, 3, max(2, h // 10), max(2, w // 10), generator=g),
                      size=(h, w), mode='bilinear', align_corners=False)
    return (x + 0.01 * torch.randn(x.shape, generator=g)).clamp(0, 1).to(device)


def image_graph(spec: dict, device: Any, mem: PeakMemory) -> dict:
    """Time and peak memory of the image graph by one search, its proof statistics, and
    (``check``) whether the dense search gives the same index and weights."""
    import torch
    from nlseg.ops import knn_graph
    from nlseg.ops.knn_search import windowed_knn
    x = load_image(spec, device)
    k, impl = spec['k'], spec['impl']
    with torch.no_grad():
        mem.start()
        t0 = time.perf_counter()
        index, weight = knn_graph(x, k=k, impl=impl)
        sync(device)
        first = time.perf_counter() - t0
        mb = mem.peak_mb()
        out = dict(ms=first * 1e3, mb=mb)
        if spec.get('repeat'):
            out['ms'] = min(first, timed(lambda: knn_graph(x, k=k, impl=impl), device,
                                         repeats=2) / 1e3) * 1e3
        if impl == 'efficient':
            f = x[0].flatten(1)
            _, _, stats = windowed_knn(f, x.shape[2], x.shape[3], k, 1 / 80, 255 / 26)
            out['levels'] = stats['levels']
            out['dense_rows'] = stats['dense_rows']
        if spec.get('check'):
            t0 = time.perf_counter()
            ref_index, ref_weight = knn_graph(x, k=k, impl='dense')
            out['dense_ms'] = (time.perf_counter() - t0) * 1e3
            out['equal'] = bool(torch.equal(index, ref_index)
                                and torch.equal(weight, ref_weight))
    return out


def nltv_parts(spec: dict, device: Any, mem: PeakMemory) -> dict:
    """The NLTV part of the recipe's training step at h x w, batch b, K = 3: the image graph
    of the batch (d = k), then the solver's train_iters = 3 unrolled iterations ('bptt')
    forward and backward: time, peak memory and bytes autograd saves."""
    import torch
    from nlseg.ops import knn_graph, nltv_softmax
    h, w, b, k = spec['h'], spec['w'], spec['batch'], spec['k']
    images = torch.cat([load_image(dict(spec, path=None), device)] * b)
    t0 = time.perf_counter()
    with torch.no_grad():
        index, weight = knn_graph(images, k=k)
    graph_ms = (time.perf_counter() - t0) * 1e3
    logits = torch.randn(b, 3, h, w, device=device, requires_grad=True)
    r = measure_step(lambda: nltv_softmax(logits, index, weight, iters=3, tol=None,
                                          grad='bptt', log=True), mem, device)
    return dict(graph_ms=graph_ms, solver_ms=r['ms'], solver_mb=r['mb'],
                saved_mb=r['saved_mb'])


RECIPE_CONFIGS = {
    'plain': 'configs/nltv/unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py',
    'local TV': 'configs/nltv/ltv-fcn_unet-s5-d16_1xb3-20k_wbc-300x300.py',
    'NLTV': 'configs/nltv/nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py',
}


def recipe_step(spec: dict, device: Any, mem: PeakMemory) -> dict:
    """The WBC recipe's model (config ``spec['config']``, stage-1 init switched off) on a
    batch of ``spec['batch']`` images of h x w: peak memory of the first training step, the
    median time of 2 more, and (``solve``) the time of the test-time forward of one image."""
    import torch
    from mmengine.config import Config
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    from mmseg.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(osp.join(ROOT, RECIPE_CONFIGS[spec['model']]))
    model_cfg = cfg.model
    if model_cfg.backbone.type == 'WithImageLevel':
        model_cfg.backbone.backbone.init_cfg = None
        model_cfg.decode_head.base_head.init_cfg = None
    model = MODELS.build(model_cfg).to(device)
    model.init_weights()
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    h, w, b = spec['h'], spec['w'], spec['batch']
    g = torch.Generator().manual_seed(0)
    paths = (spec.get('paths') or [None] * b)[:b]
    images = [(load_image(dict(spec, path=p), 'cpu')[0] * 255).round().to(torch.uint8)
              for p in paths]
    samples = []
    for _ in range(b):
        sample = SegDataSample()
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 3, (1, h, w), generator=g))
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w)))
        samples.append(sample)

    def step():
        data = model.data_preprocessor(dict(inputs=images, data_samples=samples), True)
        losses = model(**data, mode='loss')
        loss = sum(v for key, v in losses.items() if 'loss' in key)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sync(device)

    mem.start()
    step()
    mb = mem.peak_mb()
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    out = dict(mb=mb, ms=statistics.median(times) * 1e3)
    if spec.get('solve'):
        model.eval()
        data = model.data_preprocessor(dict(inputs=images[:1], data_samples=samples[:1]),
                                       False)
        with torch.no_grad():
            t0 = time.perf_counter()
            model(data['inputs'], mode='tensor')
            sync(device)
            out['solve_ms'] = (time.perf_counter() - t0) * 1e3
    return out


def spawn(spec: dict) -> dict:
    """:func:`child` in a fresh process (``python -m nlseg.analysis.nltv_benchmark --child
    SPEC``); raises RuntimeError with its error output when it fails."""
    out = subprocess.run([sys.executable, '-m', 'nlseg.analysis.nltv_benchmark', '--child',
                          json.dumps(spec)], capture_output=True, text=True, cwd=ROOT,
                         timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def real_images(root: Optional[str]) -> dict:
    """The first WBC and CamVid test images under ``root`` (None: none)."""
    if not root:
        return {}
    wbc = sorted(glob.glob(osp.join(root, 'wbc-dataset2', '*.bmp')))
    camvid = sorted(glob.glob(osp.join(root, 'camvid-segnet', 'test', '*.png')))
    return dict(wbc=wbc[:3] if wbc else None, camvid=camvid[:3] if camvid else None)


def main(argv: Optional[list[str]] = None) -> int:
    """The command line of ``tools/analysis/benchmark_nltv.py``: print the sections."""
    parser = argparse.ArgumentParser(description=' '.join(__doc__.split('\n\n')[0].split()))
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--skip-large', action='store_true',
                        help='skip the 128 x 256 and 1024 x 2048 graph constructions')
    parser.add_argument('--sections', default='parts,graph,recipe',
                        help='comma-separated: parts, graph, recipe')
    parser.add_argument('--real-data', default=os.environ.get('NLSEG_REAL_DATA'),
                        help='folder holding wbc-dataset2/ and camvid-segnet/ '
                             '(default $NLSEG_REAL_DATA)')
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return 0
    sections = set(args.sections.split(','))
    unknown = sections - {'parts', 'graph', 'recipe'}
    if unknown:
        parser.error(f'--sections: unknown {sorted(unknown)}; choose from parts, graph, recipe')
    base = dict(device=args.device, threads=args.threads, k=10)
    print(f'## NLTV benchmark (device {args.device}, each figure in a fresh process)\n')
    if 'parts' in sections:
        parts(base, args.skip_large)
    images = real_images(args.real_data)
    if 'graph' in sections:
        graph_section(base, images, args.skip_large)
    if 'recipe' in sections:
        recipe_section(base, images)
    return 0


def parts(base: dict, skip_large: bool) -> None:
    """The ``parts`` section."""
    small = dict(base, h=64, w=64, classes=21)
    print('### 64 x 64 map, K = 21, k = 10 (median of 3 after a warm-up)\n')
    print('| part | time (ms) |\n|---|---|')
    for c in (512, 21):
        r = spawn(dict(small, c=c, kind='graph_time'))
        print(f'| knn_graph, C = {c} features | {r["ms"]:.1f} |')
    r = spawn(dict(small, c=512, kind='solver_time'))
    print(f'| nltv_softmax, 10 iterations | {r["ms"]:.1f} |')
    print('\n### One training step of NLTVSoftmax at 64 x 64, K = 21, k = 10, C = 512\n')
    print('| train_iters | grad | block: peak (MB) | block: saved (MB) | block: time (ms) '
          '| solver: peak (MB) | solver: saved (MB) | solver: time (ms) |')
    print('|---|---|---|---|---|---|---|---|')
    for iters in (1, 5, 10):
        for grad in ('bptt', 'one_step'):
            r = spawn(dict(small, c=512, kind='train_step', iters=iters, grad=grad))
            s = spawn(dict(small, c=512, kind='solver_step', iters=iters, grad=grad))
            print(f'| {iters} | {grad} | {r["mb"]:.1f} | {r["saved_mb"]:.1f} | {r["ms"]:.0f} '
                  f'| {s["mb"]:.1f} | {s["saved_mb"]:.1f} | {s["ms"]:.0f} |')
    if skip_large:
        return
    print('\n### Graph construction at 128 x 256 (no autograd), k = 10\n')
    print('| C | peak memory (MB) | time (ms) |\n|---|---|---|')
    for c in (512, 19):
        r = spawn(dict(base, h=128, w=256, c=c, classes=19, kind='graph_memory'))
        print(f'| {c} | {r["mb"]:.1f} | {r["ms"]:.0f} |')


def graph_section(base: dict, images: dict, skip_large: bool) -> None:
    """The ``graph`` section."""
    print('\n### The image graph (colours, eq. 11), dense and windowed search\n')
    print('| image | size | d | search | time (ms) | peak (MB) | rows proved per window '
          '(radius: proved / searched) | rows searched densely | same graph as dense |')
    print('|---|---|---|---|---|---|---|---|---|')
    cases = [('WBC', (images.get('wbc') or [None])[0], 300, 300, 20),
             ('CamVid', (images.get('camvid') or [None])[0], 360, 480, 10)]
    for name, path, h, w, k in cases:
        label = f'{name} {osp.basename(path)}' if path else f'{name}-sized, synthetic'
        r = spawn(dict(base, kind='image_graph', h=h, w=w, k=k, impl='efficient', path=path,
                       repeat=True, check=True))
        levels = ', '.join(f'{lr}: {done} / {n}' for lr, n, done in r['levels'])
        print(f'| {label} | {h} x {w} | {k} | dense | {r["dense_ms"]:.0f} | | | all | |')
        print(f'| {label} | {h} x {w} | {k} | efficient | {r["ms"]:.0f} | {r["mb"]:.0f} '
              f'| {levels} | {r["dense_rows"]} | {"yes" if r["equal"] else "**no**"} |')
    if skip_large:
        return
    r = spawn(dict(base, kind='image_graph', h=1024, w=2048, k=10, impl='efficient'))
    levels = ', '.join(f'{lr}: {done} / {n}' for lr, n, done in r['levels'])
    print(f'| Cityscapes-sized, synthetic | 1024 x 2048 | 10 | efficient | {r["ms"]:.0f} '
          f'| {r["mb"]:.0f} | {levels} | {r["dense_rows"]} | |')


def recipe_section(base: dict, images: dict) -> None:
    """The ``recipe`` section."""
    print('\n### The WBC recipe\'s U-Net s5-d16, batch 3, K = 3: one training step and the '
          'test-time solve\n')
    print('Images: the first 3 published WBC images at 300 x 300, CamVid test images at '
          '360 x 480 (with --real-data), smooth random images otherwise.\n')
    print('| size | softmax | step (ms) | step / plain | peak (MB) | peak - plain (MB) '
          '| test-time forward, 1 image (ms) |')
    print('|---|---|---|---|---|---|---|')
    for h, w in ((64, 64), (300, 300), (360, 480)):
        paths = {(300, 300): images.get('wbc'),
                 (360, 480): images.get('camvid')}.get((h, w))
        plain = None
        for model in ('plain', 'local TV', 'NLTV'):
            r = spawn(dict(base, kind='recipe_step', model=model, h=h, w=w, batch=3,
                           paths=paths, solve=True))
            if plain is None:
                plain = r
            print(f'| {h} x {w} | {model} | {r["ms"]:.0f} | {r["ms"] / plain["ms"]:.2f} '
                  f'| {r["mb"]:.0f} | {r["mb"] - plain["mb"]:+.0f} | {r["solve_ms"]:.0f} |')
    print('\nWhere the NLTV step\'s extra goes (batch 3, K = 3, d = 20, the map padded to a '
          'multiple of 16): the image graph of the batch, and the solver\'s 3 unrolled '
          'iterations forward + backward\n')
    print('| size | graph of 3 images (ms) | solver fwd + bwd (ms) | solver peak (MB) '
          '| saved for backward (MB) |')
    print('|---|---|---|---|---|')
    for h, w in ((64, 64), (304, 304), (368, 480)):
        r = spawn(dict(base, kind='nltv_parts', h=h, w=w, batch=3, k=20))
        print(f'| {h} x {w} | {r["graph_ms"]:.0f} | {r["solver_ms"]:.0f} '
              f'| {r["solver_mb"]:.0f} | {r["saved_mb"]:.0f} |')


if __name__ == '__main__':
    sys.exit(main())
