"""Model complexity (FLOPs, parameters) with mmengine's counter, completed for attention.

mmengine 0.10.7's :class:`~mmengine.analysis.FlopAnalyzer` traces the model with
``torch.jit`` and counts, per traced aten op, MULTIPLY-ADDS (one multiply-add = one "flop",
i.e. its figure is a MAC count) for: ``_convolution``, ``addmm``, ``mm``, ``bmm``, ``matmul``,
``einsum``, ``linear``, the norms (``batch_norm``...), ``upsample_*2d``,
``adaptive_avg_pool2d`` and ``grid_sampler``. Everything else counts zero and is reported as
"unsupported", in particular:

* ``aten::scaled_dot_product_attention`` (and the kernels it dispatches to, such as
  ``aten::_scaled_dot_product_flash_attention_for_cpu``), and the custom autograd Functions
  (``prim::PythonOp``) of nlseg's efficient paths, ``_CpuFlashAttention``
  (:mod:`nlseg.ops.attention`) and ``_ChunkedConcatenation`` (:mod:`nlseg.ops.concat_affinity`):
  the two N x M products of every non-local block on its efficient path;
* ``aten::linalg_solve`` (Hamburger CD's ridge solve) and ``aten::baddbmm`` (the kNN graph
  of NLTV);
* element-wise and reduction ops (``softmax``, ``mul``, ``div``, ``add``, ``sum``, ``exp``,
  ``max_pool2d``, ``scatter_add``...), which are not products and stay uncounted here too.

Also ``aten::matmul``'s handle counts ``prod(a.shape) * b.shape[-1]``, which misses the
batch dimensions that only the second operand has (broadcast).

:func:`complexity_info` adds the missing products with mmengine's own mechanism
(``FlopAnalyzer.set_op_handle``) and returns both figures, mmengine's default count and the
completed count, from one trace.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Any, Callable, Optional, Sequence, Union

import torch
import torch.nn as nn

__all__ = ['complexity_info', 'build_eval_segmentor', 'format_count', 'EXTRA_FLOP_OPS']

#: Suffix of the operator names under which the completed count books what mmengine misses.
ADDED = ' (added)'


def _shape(value) -> Optional[list[int]]:
    return value.type().sizes() if value.isCompleteTensor() else None


def _attention_macs(inputs: list, outputs: list) -> Counter:
    """softmax(Q K^T) V: (..., L, E) x (..., S, E) and (..., L, S) x (..., S, Ev)."""
    q, k, v = (_shape(x) for x in inputs[:3])
    batch = math.prod(q[:-2])
    length, source, e, ev = q[-2], k[-2], q[-1], v[-1]
    return Counter({'scaled_dot_product_attention' + ADDED: batch * length * source * (e + ev)})


def _chunked_concatenation_macs(inputs: list, outputs: list) -> Counter:
    """relu(a_i + b_j) / M times g: a (B, N), b (B, M), g (B, M, Cv) -> B N M Cv."""
    a, g = _shape(inputs[0]), _shape(inputs[2])
    return Counter({'concatenation_attention' + ADDED: a[0] * a[1] * g[1] * g[2]})


def _linalg_solve_macs(inputs: list, outputs: list) -> Counter:
    """LU of each n x n system (n^3 / 3 MACs) + forward/back substitution (n^2 per column)."""
    a, out = _shape(inputs[0]), _shape(outputs[0])
    n = a[-1]
    vector = len(out) == len(a) - 1  # B is (..., n): one right-hand side
    columns = math.prod(out[:-1]) // n if vector else math.prod(out[:-2]) * out[-1]
    return Counter({'linalg_solve' + ADDED: math.prod(a[:-2]) * (n ** 3 // 3) + columns * n * n})


def _baddbmm_macs(inputs: list, outputs: list) -> Counter:
    """beta * M + alpha * (B1 @ B2) with B1 (b, n, k), B2 (b, k, m)."""
    b1, b2 = _shape(inputs[1]), _shape(inputs[2])
    return Counter({'baddbmm' + ADDED: b1[0] * b1[1] * b1[2] * b2[2]})


def _matmul_macs(inputs: list, outputs: list) -> Counter:
    """mmengine's count plus what it misses under broadcasting: the exact count is
    numel(output) * contracted size."""
    a, b = (_shape(x) for x in inputs[:2])
    out = _shape(outputs[0])
    a2 = [1, a[0]] if len(a) == 1 else a
    b_last = 1 if len(b) == 1 else b[-1]
    mmengine = math.prod(a2) * b_last
    exact = math.prod(out) * a[-1]
    counts = Counter({'matmul': mmengine})
    if exact > mmengine:
        counts['matmul_broadcast' + ADDED] = exact - mmengine
    return counts


#: aten op -> handle of the products that mmengine 0.10.7 does not count (or undercounts).
EXTRA_FLOP_OPS: dict[str, Callable] = {
    'aten::scaled_dot_product_attention': _attention_macs,
    'aten::_scaled_dot_product_flash_attention_for_cpu': _attention_macs,
    'aten::_scaled_dot_product_flash_attention': _attention_macs,
    'aten::_scaled_dot_product_efficient_attention': _attention_macs,
    # nlseg's own autograd Functions (traced as prim::PythonOp.<class name>)
    'prim::PythonOp._CpuFlashAttention': _attention_macs,
    'prim::PythonOp._ChunkedConcatenation': _chunked_concatenation_macs,
    'aten::linalg_solve': _linalg_solve_macs,
    'aten::baddbmm': _baddbmm_macs,
    'aten::matmul': _matmul_macs,
}


def format_count(count: Union[int, float]) -> str:
    """1234567 -> '1.235M' (mmengine's style: K, M, G, T)."""
    for unit, scale in (('T', 1e12), ('G', 1e9), ('M', 1e6), ('K', 1e3)):
        if abs(count) >= scale:
            return f'{count / scale:.3f}{unit}'
    return str(int(count))


class _TensorForward(nn.Module):
    """Calls a segmentor as ``model(inputs, mode='tensor')`` (jit traces positional args)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: torch.Tensor) -> Any:
        return self.model(inputs, mode='tensor')


def _counting(handle: Callable, calls: Counter, op: str) -> Callable:
    def counted(inputs, outputs):
        calls[op] += 1
        return handle(inputs, outputs)
    return counted


def complexity_info(model: nn.Module, inputs: Union[torch.Tensor, Sequence[Any]],
                    count_all_matmuls: bool = True) -> dict:
    """Parameters and FLOPs (multiply-adds, mmengine's convention) of one forward pass.

    Args:
        model: any module, called as ``model(*inputs)``; an mmseg ``BaseSegmentor`` is called
            as ``model(inputs, mode='tensor')``. Put it in the mode you want counted
            (``eval()`` for inference) beforehand; the trace runs under ``no_grad``.
        inputs: a tensor or a tuple of positional arguments (a decode head takes ``([x],)``).
        count_all_matmuls: also count the products mmengine misses (:data:`EXTRA_FLOP_OPS`).

    Returns:
        dict with ``params``, ``flops`` (the completed count, or mmengine's when
        ``count_all_matmuls`` is False), ``flops_mmengine`` (mmengine's default count),
        ``flops_added`` (op -> MACs added), ``uncounted_ops`` and ``uncounted_ops_mmengine``
        (op -> number of calls that count zero), and ``*_str`` forms of the three figures.
    """
    from mmengine.analysis import FlopAnalyzer, parameter_count
    from mmseg.models import BaseSegmentor

    if isinstance(inputs, torch.Tensor):
        inputs = (inputs, )
    inputs = tuple(inputs)
    traced = _TensorForward(model) if isinstance(model, BaseSegmentor) else model
    analyzer = FlopAnalyzer(traced, inputs)
    analyzer.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    analyzer.tracer_warnings('none')
    calls: Counter = Counter()
    if count_all_matmuls:
        analyzer.set_op_handle(**{op: _counting(handle, calls, op)
                                  for op, handle in EXTRA_FLOP_OPS.items()})
    with torch.no_grad():
        by_op = analyzer.by_operator()
        uncounted = Counter(analyzer.unsupported_ops())
    flops = int(sum(by_op.values()))
    added = {op[:-len(ADDED)]: int(n) for op, n in by_op.items() if op.endswith(ADDED)}
    flops_mmengine = flops - sum(added.values())
    uncounted_mmengine = Counter(uncounted)
    for op, n in calls.items():  # ops that only the completion counts
        if op != 'aten::matmul':
            uncounted_mmengine[op] += n
    params = int(parameter_count(model)[''])
    return dict(params=params, flops=flops, flops_mmengine=flops_mmengine, flops_added=added,
                uncounted_ops=dict(uncounted), uncounted_ops_mmengine=dict(uncounted_mmengine),
                params_str=format_count(params), flops_str=format_count(flops),
                flops_mmengine_str=format_count(flops_mmengine))


def build_eval_segmentor(config, checkpoint: Optional[str] = None,
                         cfg_options: Optional[dict] = None) -> nn.Module:
    """Build the segmentor of an mmseg/nlseg config on the CPU, in eval mode, for analysis.

    ``pretrained=None`` and ``backbone.init_cfg=None`` (nothing is downloaded), SyncBN is
    reverted to BN, and ``checkpoint`` (optional; random init without one) is loaded with
    the allowlist of :func:`nlseg.utils.checkpoint.allow_mmengine_checkpoint_globals`.
    ``config`` is a path or an ``mmengine.Config``.
    """
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint
    from mmseg.registry import MODELS

    import nlseg  # noqa: F401  (registers the heads even for configs without custom_imports)
    from .checkpoint import allow_mmengine_checkpoint_globals

    cfg = Config.fromfile(config) if not isinstance(config, Config) else config.copy()
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    cfg.model.pretrained = None
    if isinstance(cfg.model.get('backbone'), dict) and 'init_cfg' in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    cfg.model.train_cfg = None
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    if checkpoint is not None:
        allow_mmengine_checkpoint_globals()
        ckpt = load_checkpoint(model, checkpoint, map_location='cpu', logger='silent')
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
    model.cfg = cfg
    return model.eval()
