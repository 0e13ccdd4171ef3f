"""ONNX export of an mmseg segmentor built from a config and a checkpoint, checked against
PyTorch eval mode with ONNX Runtime (what ``tools/deployment/pytorch2onnx.py`` runs).

The exported module is ``model(inputs, mode='tensor')`` (backbone, neck and decode head; the
input is the NORMALISED (1, 3, H, W) batch, after the data preprocessor; the output the decode
head's logits before resizing). :func:`export_and_check` prints the maximum absolute
difference of ONNX Runtime from PyTorch and returns the command line's exit status: 0 when
every element agrees within ``atol + rtol * |torch|``, 1 when one does not, 2 when the model
cannot be exported.
"""
from __future__ import annotations

import os.path as osp
import sys
from typing import Any, Optional, Sequence

import torch.nn as nn

__all__ = ['build_segmentor', 'default_shape', 'export_and_check']


def build_segmentor(config: str, checkpoint: str,
                    cfg_options: Optional[dict] = None) -> tuple[Any, nn.Module]:
    """The config and the segmentor of ``config`` with the weights of ``checkpoint``, in eval
    mode on the CPU (SyncBN reverted to BN, no pretrained weights loaded)."""
    import nlseg  # noqa: F401  (registers nlseg's modules; allowlists checkpoint globals)
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None
    cfg.model.train_cfg = None
    model = MODELS.build(cfg.model)
    load_checkpoint(model, checkpoint, map_location='cpu')
    model = revert_sync_batchnorm(model)
    return cfg, model.eval()


def default_shape(cfg: Any) -> tuple[int, int]:
    """The config's ``crop_size`` as (H, W), else (512, 512)."""
    crop = cfg.get('crop_size', None)
    if crop is None:
        return 512, 512
    return (int(crop[0]), int(crop[1])) if isinstance(crop, (list, tuple)) else (crop, crop)


def export_and_check(config: str, checkpoint: str, output_file: Optional[str] = None,
                     shape: Optional[Sequence[int]] = None, opset: Optional[int] = None,
                     dynamic: bool = False, atol: Optional[float] = None,
                     rtol: Optional[float] = None, seed: int = 0,
                     cfg_options: Optional[dict] = None) -> int:
    """Export the segmentor of ``config`` / ``checkpoint`` to ONNX and check it (see the
    module docstring); returns the exit status 0, 1 or 2.

    Args:
        config: model config file. checkpoint: mmengine checkpoint file.
        output_file: the .onnx file (default: the checkpoint path with .onnx).
        shape: input (H, W) (default: :func:`default_shape` of the config).
        opset: ONNX opset version (None: the exporter's). dynamic: symbolic H and W; the
            check is then repeated at a second size.
        atol, rtol: tolerances (None: :data:`~nlseg.deploy.onnx_export.ATOL`, ``RTOL``).
        seed: seed of the check input. cfg_options: config overrides.
    """
    import torch

    from .onnx_export import ATOL, RTOL, SegmentorTensorForward, export_onnx, max_abs_diff, \
        onnxruntime_session, run_onnxruntime, torch_eval, within_tolerance

    atol = ATOL if atol is None else atol
    rtol = RTOL if rtol is None else rtol
    cfg, model = build_segmentor(config, checkpoint, cfg_options)
    h, w = shape if shape is not None else default_shape(cfg)
    output = output_file or osp.splitext(checkpoint)[0] + '.onnx'
    module = SegmentorTensorForward(model)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, h, w, generator=g)
    try:
        export_onnx(module, x, output, dynamic=dynamic, opset=opset)
    except Exception as e:  # the exporter's errors are long: the reason, then stop
        print(f'pytorch2onnx: cannot export {config}: {type(e).__name__}: '
              f'{str(e).splitlines()[0] if str(e) else e!r}', file=sys.stderr)
        cause = e.__cause__
        while cause is not None:
            print(f'  caused by {type(cause).__name__}: {str(cause).splitlines()[0]}',
                  file=sys.stderr)
            cause = cause.__cause__
        return 2
    import onnx
    got_opset = next(o.version for o in
                     onnx.load(output, load_external_data=False).opset_import
                     if o.domain in ('', 'ai.onnx'))
    print(f'wrote {output} (opset {got_opset}, input {tuple(x.shape)}, H and W '
          f'{"dynamic" if dynamic else "fixed"})')
    if opset is not None and got_opset != opset:
        print(f'pytorch2onnx: warning: the graph could not be converted to opset {opset} '
              f'(onnx\'s version converter); it has opset {got_opset}', file=sys.stderr)
    session = onnxruntime_session(output)
    sizes = [(h, w)]
    if dynamic:
        sizes.append((h + h // 2 + 1, w + w // 4 + 3))
    ok = True
    for i, (hh, ww) in enumerate(sizes):
        xi = x if i == 0 else torch.randn(1, 3, hh, ww, generator=g)
        ref = torch_eval(module, xi)
        out = run_onnxruntime(session, xi)
        diff = max_abs_diff(out, ref)
        passed = within_tolerance(out, ref, atol, rtol)
        ok &= passed
        print(f'input 1x3x{hh}x{ww}: output {tuple(out.shape)}, max abs diff ONNX Runtime vs '
              f'PyTorch {diff:.3e} (tolerance {atol:g} + {rtol:g} |torch|, max |torch| '
              f'{float(abs(ref).max()):.3e}): {"OK" if passed else "FAILED"}')
    return 0 if ok else 1
