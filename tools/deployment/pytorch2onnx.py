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
import sys


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


def main(argv=None) -> int:
    args = parse_args(argv)
    from nlseg.deploy import export_and_check
    return export_and_check(args.config, args.checkpoint, output_file=args.output_file,
                            shape=args.shape, opset=args.opset, dynamic=args.dynamic,
                            atol=args.atol, rtol=args.rtol, seed=args.seed,
                            cfg_options=args.cfg_options)


if __name__ == '__main__':
    sys.exit(main())
