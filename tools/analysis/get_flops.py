"""FLOPs and parameters of a segmentor config (mmengine 0.10 compatible).

    python tools/analysis/get_flops.py CONFIG --shape H W [--cfg-options k=v ...]

Builds the model on the CPU (``pretrained=None``, ``backbone.init_cfg=None``, SyncBN -> BN,
no auxiliary head: the inference network), in eval mode, and traces one tensor forward
``model(inputs, mode='tensor')`` of a random (1, 3, H, W) input: the backbone and the decode
head up to its logits at feature resolution (no final resize, no data preprocessing).

Two figures are printed, both in mmengine's unit (one multiply-add = one flop, i.e. MACs):

* mmengine's count (``get_model_complexity_info``): convolutions, linear layers, mm/bmm/
  matmul, einsum, norms, upsampling, adaptive pooling. It does NOT count
  ``scaled_dot_product_attention`` (the fused attention of the efficient non-local blocks),
  ``linalg_solve`` (Hamburger CD), ``baddbmm`` (NLTV's kNN graph), batch dimensions that
  only the second operand of a matmul has, nor any element-wise op (softmax, exp, add...).
* the completed count (:func:`nlseg.utils.complexity.complexity_info`): the same trace with
  the products above added through mmengine's ``FlopAnalyzer.set_op_handle``. Element-wise
  ops remain uncounted in both; the ops that count zero are listed.

Iterative heads are counted for the iterations the traced forward actually runs: NLTVHead in
eval mode iterates until its duality gap test stops it (up to 1500 PDHG steps for a random
model, a trace of minutes), so set e.g. ``--cfg-options model.decode_head.nltv.test_iters=10``
to count a fixed number of steps. mmseg 1.2.2's own get_flops.py fails under mmengine >= 0.7.3
(it passes both ``input_shape`` and ``inputs``); this script does not.
"""
from __future__ import annotations

import argparse

from nlseg.analysis.flops import format_report, get_flops


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='FLOPs and parameters of a segmentor.')
    parser.add_argument('config', help='config file')
    parser.add_argument('--shape', type=int, nargs='+', default=[512, 512],
                        help='input height and width (one value: a square input)')
    parser.add_argument('--mmengine-only', action='store_true',
                        help="print only mmengine's default count")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) < 1:
        parser.error(f'--shape takes H W or one side, positive; got {args.shape}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    shape = tuple(args.shape) * (2 if len(args.shape) == 1 else 1)
    info = get_flops(args.config, shape, args.cfg_options,
                     count_all_matmuls=not args.mmengine_only)
    print(format_report(info, completed=not args.mmengine_only))


if __name__ == '__main__':
    main()
