"""Export an mmseg segmentor (any nlseg config) to ONNX and check it against PyTorch.

    python tools/deployment/pytorch2onnx.py CONFIG CHECKPOINT [--output-file F]
        [--shape H W] [--opset N] [--dynamic] [--cfg-options k=v ...]

Builds the model of CONFIG (``import nlseg`` registers its heads), loads CHECKPOINT with
mmengine's ``load_checkpoint``, exports ``model(inputs, mode='tensor')`` (backbone, neck and
decode head; the input is the NORMALISED (1, 3, H, W) batch, after the data preprocessor;
the output the decode head's logits before resizing) with torch's dynamo-based exporter, then
runs ONNX Runtime (CPU) on one seeded random input and compares with PyTorch eval mode. It
prints the maximum absolute difference and exits with status 1 when an element differs by
more than ``--atol + --rtol * |torch|`` (defaults 1e-4, 1e-4), 2 when the model cannot be
exported (the reason is printed). ``--dynamic`` makes H and W symbolic: the file then runs
at any size, and the check is repeated at a second size.

NLTV heads must be exported with a fixed iteration count: ``--cfg-options
model.decode_head.nltv.tol=None model.decode_head.nltv.test_iters=50`` (the stop on the
duality gap is data-dependent control flow).
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)


def parse_args(argv=None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='Export an mmseg/nlseg model to ONNX and '
                                                 'check it against PyTorch')
    parser.add_argument('config', help='model config file')
    parser.add_argument('checkpoint', help='checkpoint file (mmengine format)')
    parser.add_argument('--output-file', default=None,
                        help='the .onnx file (default: the checkpoint path with .onnx)')
    parser.add_argument('--shape', type=int, nargs=2, metavar=('H', 'W'), default=None,
                        help='input height and width (default: the config\'s crop_size, '
                             'else 512 512)')
    parser.add_argument('--opset', type=int, default=None,
                        help='ONNX opset version (default: the exporter\'s)')
    parser.add_argument('--dynamic', action='store_true',
                        help='symbolic H and W (the graph runs at any size)')
    parser.add_argument('--atol', type=float, default=None, help='absolute tolerance')
    parser.add_argument('--rtol', type=float, default=None, help='relative tolerance')
    parser.add_argument('--seed', type=int, default=0, help='seed of the check input')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings of the config, key=value (as tools/train.py)')
    return parser.parse_args(argv)


def build_segmentor(config: str, checkpoint: str, cfg_options=None):
    """The segmentor of ``config`` with the weights of ``checkpoint``, in eval mode on the
    CPU (SyncBN reverted to BN, no pretrained weights loaded)."""
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


def default_shape(cfg) -> tuple[int, int]:
    crop = cfg.get('crop_size', None)
    if crop is None:
        return 512, 512
    return (int(crop[0]), int(crop[1])) if isinstance(crop, (list, tuple)) else (crop, crop)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from onnx_export import ATOL, RTOL, SegmentorTensorForward, export_onnx, max_abs_diff, \
        onnxruntime_session, run_onnxruntime, torch_eval, within_tolerance

    atol = ATOL if args.atol is None else args.atol
    rtol = RTOL if args.rtol is None else args.rtol
    cfg, model = build_segmentor(args.config, args.checkpoint, args.cfg_options)
    h, w = args.shape if args.shape is not None else default_shape(cfg)
    output = args.output_file or osp.splitext(args.checkpoint)[0] + '.onnx'
    module = SegmentorTensorForward(model)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(1, 3, h, w, generator=g)
    try:
        export_onnx(module, x, output, dynamic=args.dynamic, opset=args.opset)
    except Exception as e:  # the exporter's errors are long: the reason, then stop
        print(f'pytorch2onnx: cannot export {args.config}: {type(e).__name__}: '
              f'{str(e).splitlines()[0] if str(e) else e!r}', file=sys.stderr)
        cause = e.__cause__
        while cause is not None:
            print(f'  caused by {type(cause).__name__}: {str(cause).splitlines()[0]}',
                  file=sys.stderr)
            cause = cause.__cause__
        return 2
    import onnx
    opset = next(o.version for o in onnx.load(output, load_external_data=False).opset_import
                 if o.domain in ('', 'ai.onnx'))
    print(f'wrote {output} (opset {opset}, input {tuple(x.shape)}, H and W '
          f'{"dynamic" if args.dynamic else "fixed"})')
    if args.opset is not None and opset != args.opset:
        print(f'pytorch2onnx: warning: the graph could not be converted to opset {args.opset} '
              f'(onnx\'s version converter); it has opset {opset}', file=sys.stderr)
    session = onnxruntime_session(output)
    sizes = [(h, w)]
    if args.dynamic:
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


if __name__ == '__main__':
    sys.exit(main())
