"""Kernel ``'softmax'``: Y = softmax_j(scale * q_i . k_j) v_j (NL gaussian and embedded
gaussian, Wang et al. 2018 eq. 2-3 with f = exp(theta_i . phi_j); ARNLB with the per-position
inverse temperature folded into the query; the NS stage's softmax modes).

Dense path :func:`softmax_dense`: :func:`softmax_affinity` A (B, N, M), then A v. Efficient
path :func:`softmax_attention`: fused softmax attention, never forming the N x M affinity.

Backend. ``torch.nn.functional.scaled_dot_product_attention`` chooses its kernel from the
input layout. On the CPU (torch 2.13) the flash kernel
(``aten::_scaled_dot_product_flash_attention_for_cpu``, online softmax with float32
accumulation, O(N) memory) is chosen only for 4-D inputs (B, heads, N, D) whose query, key
and value head dimensions are EQUAL; 3-D inputs or a value head dimension different from the
query's fall back to the math kernel, which materialises the N x M matrix. So the inputs are
laid out as contiguous (B, 1, N, D) tensors and the smaller head dimension is zero-padded
(zero columns change neither the logits Q K^T nor, after slicing, the output). The call is
restricted to the fused kernels (flash, memory-efficient, cuDNN); if none accepts the inputs
(e.g. a CUDA head dimension beyond the flash limit) the computation falls back to the math
kernel in float32 with autocast disabled, so that half-precision logits can never overflow.

CPU backward. torch's CPU flash backward is slow (measured at N = 4096, D = 256 on this
project's 2-core machine: forward 0.3-0.6 s, backward 5.7 s, against 1.2 s for the dense
backward). On the CPU the forward therefore calls the flash kernel directly
(``aten::_scaled_dot_product_flash_attention_for_cpu``) and the backward recomputes
P = softmax(scale Q K^T) in chunks of whole query rows with large matrix products:
dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(P * dP)) * scale, dQ = dS K, dK = dS^T Q,
in float32, with O(chunk x M) extra memory. P is normalised by its own row sums and the
row term is rowsum(P * dP), not the FlashAttention form exp(scale Q K^T - L) with the
forward's logsumexp L and rowsum(dO * O) with its output O: the recomputed logits differ
from the forward kernel's by rounding (an ulp, 5e-4 at logits of a few thousand, usual in
the unscaled gaussian mode), and mixing the two made float32 gradients up to 20x less
accurate than the dense path's, and non-zero where a saturated softmax has a zero gradient.
With both terms from the same P the backward has the dense path's accuracy.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.nn.attention import SDPBackend, sdpa_kernel

from .._precision import autocast_disabled, upcast
from .common import Kernel, apply_affinity, random_inputs

__all__ = ['softmax_affinity', 'softmax_attention', 'softmax_dense', 'FUSED_SDPA_BACKENDS']

#: Backends the efficient path accepts; all compute the softmax with float32 accumulation.
FUSED_SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                       SDPBackend.CUDNN_ATTENTION]


def _check_shapes(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
    if query.dim() != 3 or key.dim() != 3 or value.dim() != 3:
        raise ValueError('softmax_attention expects query (B, N, D), key (B, M, D) and value '
                         f'(B, M, Dv); got {tuple(query.shape)}, {tuple(key.shape)}, '
                         f'{tuple(value.shape)}')
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f'query and key channels differ: {query.shape[-1]} vs {key.shape[-1]}')
    if key.shape[:2] != value.shape[:2]:
        raise ValueError(f'key and value must have the same (B, M); got {tuple(key.shape)} '
                         f'and {tuple(value.shape)}')


def _pad_last(x: torch.Tensor, size: int) -> torch.Tensor:
    return x if x.shape[-1] == size else F.pad(x, (0, size - x.shape[-1]))


#: Elements of one (B, chunk, M) buffer of the CPU backward (16 MiB in float32).
BACKWARD_CHUNK_ELEMENTS = 1 << 22
_CPU_FLASH_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


class _CpuFlashAttention(torch.autograd.Function):
    """CPU flash forward, chunked recompute backward; q, k, v (B, 1, N, D) contiguous."""

    @staticmethod
    def forward(ctx, q, k, v, scale: float):
        out, _ = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, scale=scale)
        ctx.save_for_backward(q, k, v)
        ctx.scale = scale
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        q, k, v = ctx.saved_tensors
        dtypes = (q.dtype, k.dtype, v.dtype)
        q, k, v, grad_out = upcast(*(t[:, 0] for t in (q, k, v, grad_out)))
        scale = ctx.scale
        b, n, m = q.shape[0], q.shape[1], k.shape[1]
        chunk = max(1, BACKWARD_CHUNK_ELEMENTS // max(1, b * m))
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        kt, vt = k.transpose(1, 2), v.transpose(1, 2)
        for s in range(0, n, chunk):
            rows = slice(s, s + chunk)
            # P = softmax(scale q k^T) of whole rows, in place (see the module docstring)
            p = torch.matmul(q[:, rows], kt).mul_(scale)
            p = p.sub_(p.amax(dim=-1, keepdim=True)).exp_()
            p.div_(p.sum(dim=-1, keepdim=True))
            dv.baddbmm_(p.transpose(1, 2), grad_out[:, rows])
            dp = torch.matmul(grad_out[:, rows], vt)
            ds = dp.sub_(torch.linalg.vecdot(dp, p).unsqueeze(-1)).mul_(p)  # rowsum(P * dP)
            ds.mul_(scale)
            torch.matmul(ds, k, out=dq[:, rows])
            dk.baddbmm_(ds.transpose(1, 2), q[:, rows])
        return (*(g.to(dt).unsqueeze(1) for g, dt in zip((dq, dk, dv), dtypes)), None)


def _cpu_flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         scale: float) -> torch.Tensor:
    if torch.is_autocast_enabled('cpu'):  # SDPA's autocast policy: the lower precision
        dtype = torch.get_autocast_dtype('cpu')
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    else:
        dtype = torch.promote_types(torch.promote_types(q.dtype, k.dtype), v.dtype)
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    with torch.autocast('cpu', enabled=False):
        return _CpuFlashAttention.apply(q, k, v, scale)


def softmax_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      scale: float) -> torch.Tensor:
    """Return softmax_j(scale * q_i . k_j) weighted sums of v_j, shape (B, N, Dv).

    Args:
        query: (B, N, D). key: (B, M, D). value: (B, M, Dv).
        scale: multiplies the logits (1 / sqrt(D) for scaled attention, 1 for none).

    Memory is O((N + M) D): the N x M affinity is never formed when a fused kernel runs
    (always the case on the CPU for floating inputs, see the module docstring).
    """
    _check_shapes(query, key, value)
    dv = value.shape[-1]
    head_dim = max(query.shape[-1], dv)
    q, k, v = (_pad_last(t, head_dim).unsqueeze(1).contiguous() for t in (query, key, value))
    if q.device.type == 'cpu' and all(t.dtype in _CPU_FLASH_DTYPES for t in (q, k, v)) and (
            not torch.is_autocast_enabled('cpu')
            or torch.get_autocast_dtype('cpu') in _CPU_FLASH_DTYPES):
        return _cpu_flash_attention(q, k, v, scale)[:, 0, :, :dv]
    try:
        with sdpa_kernel(FUSED_SDPA_BACKENDS):
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    except RuntimeError:
        with autocast_disabled(q):
            q, k, v = upcast(q, k, v)
            out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    return out[:, 0, :, :dv]


def softmax_affinity(query: torch.Tensor, key: torch.Tensor, scale: float) -> torch.Tensor:
    """A_ij = softmax_j(scale * q_i . k_j), shape (B, N, M), in float32 (or float64)."""
    with autocast_disabled(query):
        query, key = upcast(query, key)
        logits = torch.matmul(query, key.transpose(1, 2))
        return (logits * scale).softmax(dim=-1)


def softmax_dense(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                  scale: float) -> torch.Tensor:
    """The dense path: ``apply_affinity(softmax_affinity(query, key, scale), value)``."""
    return apply_affinity(softmax_affinity(query, key, scale), value)


def example_inputs(batch: int, n: int, channels: int, *, units: int = 2,
                   generator: Optional[torch.Generator] = None,
                   dtype: torch.dtype = torch.float32,
                   requires_grad: bool = False) -> tuple[list[torch.Tensor], dict]:
    """Query, key and value (B, N, C'); scale 1 / sqrt(C') (``units`` unused)."""
    tensors = random_inputs([(batch, n, channels)] * 3, generator, dtype, requires_grad)
    return tensors, dict(scale=channels ** -0.5)


KERNEL = Kernel('softmax', softmax_dense, softmax_attention,
                'softmax_j(scale q_i . k_j) v_j: NL gaussian/embedded_gaussian, ARNLB',
                example_inputs)
