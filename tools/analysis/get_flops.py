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
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


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


def get_flops(config, shape: tuple[int, int], cfg_options: dict | None = None,
              count_all_matmuls: bool = True) -> dict:
    """complexity_info of the config's segmentor (no auxiliary head) on a (1, 3, H, W) input,
    plus ``input_shape``."""
    import torch

    from nlseg.utils.complexity import build_eval_segmentor, complexity_info

    model = build_eval_segmentor(config, cfg_options=cfg_options)
    if getattr(model, 'with_auxiliary_head', False):
        model.auxiliary_head = None  # not part of inference (mmseg's get_flops does the same)
    inputs = torch.randn(1, 3, *shape, generator=torch.Generator().manual_seed(0))
    info = complexity_info(model, inputs, count_all_matmuls=count_all_matmuls)
    info['input_shape'] = (1, 3, *shape)
    return info


def format_report(info: dict, completed: bool = True) -> str:
    from nlseg.utils.complexity import format_count
    line = '=' * 60
    rows = [line, f'Input shape: {info["input_shape"]}',
            f'Params: {info["params_str"]} ({info["params"]})',
            f'FLOPs (mmengine count, MACs): {info["flops_mmengine_str"]} '
            f'({info["flops_mmengine"]})']
    if completed:
        rows.append(f'FLOPs (completed count, MACs): {info["flops_str"]} ({info["flops"]})')
        added = ', '.join(f'{op} {format_count(n)}'
                          for op, n in sorted(info['flops_added'].items()))
        rows.append(f'  added to mmengine\'s count: {added or "nothing (no such op traced)"}')
        uncounted = info['uncounted_ops']
    else:
        uncounted = info['uncounted_ops_mmengine']
    ops = ', '.join(f'{op.replace("aten::", "")} x{n}' for op, n in
                    sorted(uncounted.items(), key=lambda kv: (-kv[1], kv[0])))
    rows += [f'Ops counted as zero (element-wise/other): {ops or "none"}', line,
             'Unit: one multiply-add = one flop (mmengine). Check the uncounted ops before '
             'quoting these figures.']
    return '\n'.join(rows)


def main(argv=None) -> None:
    args = parse_args(argv)
    shape = tuple(args.shape) * (2 if len(args.shape) == 1 else 1)
    info = get_flops(args.config, shape, args.cfg_options,
                     count_all_matmuls=not args.mmengine_only)
    print(format_report(info, completed=not args.mmengine_only))


if __name__ == '__main__':
    main()
