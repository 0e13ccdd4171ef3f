"""FLOPs and parameters of a segmentor config: the count that ``tools/analysis/get_flops.py``
prints (:func:`get_flops`) and its report (:func:`format_report`). The counting itself is
:func:`nlseg.utils.complexity.complexity_info` (mmengine's count, and the completed count
with the products mmengine leaves at zero)."""
from __future__ import annotations

from typing import Any

__all__ = ['get_flops', 'format_report']


def get_flops(config: Any, shape: tuple[int, int], cfg_options: dict | None = None,
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
    """The printed report of :func:`get_flops`'s ``info`` (``completed``: also the completed
    count and the ops it added)."""
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
