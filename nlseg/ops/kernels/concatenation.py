"""Kernel ``'concatenation'``: the concatenation affinity of the non-local block (Wang et al.
2018, eq. 5) applied to values, dense and chunked.

A_ij = relu(w . [theta_i, phi_j] + b) / M. With w = [w_t, w_p] the logit splits into a
query term a_i = w_t . theta_i + b and a key term b_j = w_p . phi_j, so

    y_i = sum_j relu(a_i + b_j) g_j / M.

:func:`concatenation_affinity` materialises A (the reference, equal to mmcv's
``NonLocal2d.concatenation`` which repeats, concatenates and applies ``concat_project``).
:func:`concatenation_attention` computes A g in query chunks with a custom autograd function
that recomputes each chunk in the backward pass: forward and backward memory are
O(chunk x M) beyond the inputs, never N x M. The kernel's dense path is
:func:`concatenation_dense` (A, then A g); its efficient path :func:`concatenation_attention`.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from .._precision import autocast_disabled, upcast
from .common import Kernel, apply_affinity, random_inputs

__all__ = ['concatenation_logits', 'concatenation_affinity', 'concatenation_attention',
           'concatenation_dense']

#: Default bound on the elements of one chunk's (B, chunk, M) buffer (16 MiB in float32).
DEFAULT_CHUNK_ELEMENTS = 1 << 22


def concatenation_logits(theta: torch.Tensor, phi: torch.Tensor, weight: torch.Tensor,
                         bias: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Split w . [theta_i, phi_j] + b into a_i (B, N) and b_j (B, M).

    ``weight`` is the (1, 2C') or (1, 2C', 1, 1) weight of the 1x1 projection applied to the
    concatenation [theta, phi]; ``bias`` its optional (1,) bias.
    """
    c = theta.shape[-1]
    w = weight.reshape(-1)
    if w.numel() != 2 * c or phi.shape[-1] != c:
        raise ValueError(f'concatenation weight must have 2 * {c} elements, got {w.numel()}')
    w_t, w_p = w[:c].to(theta.dtype), w[c:].to(phi.dtype)
    if torch.onnx.is_in_onnx_export():
        # (c, 1) matrices: onnxruntime (1.32) fuses a transposed input into a matrix-VECTOR
        # MatMul wrongly; the same products as matrix-matrix ones are exported correctly
        a = torch.matmul(theta, w_t.unsqueeze(-1)).squeeze(-1)
        b = torch.matmul(phi, w_p.unsqueeze(-1)).squeeze(-1)
    else:
        a = torch.matmul(theta, w_t)
        b = torch.matmul(phi, w_p)
    if bias is not None:
        a = a + bias.reshape(()).to(a.dtype)
    return a, b


def concatenation_affinity(theta: torch.Tensor, phi: torch.Tensor, weight: torch.Tensor,
                           bias: torch.Tensor | None = None) -> torch.Tensor:
    """Dense A_ij = relu(a_i + b_j) / M, shape (B, N, M), in float32 (or float64)."""
    with autocast_disabled(theta):
        theta, phi, weight = upcast(theta, phi, weight)
        a, b = concatenation_logits(theta, phi, weight, bias)
        return (a.unsqueeze(-1) + b.unsqueeze(-2)).relu() / phi.shape[1]


class _ChunkedConcatenation(torch.autograd.Function):
    """y_i = sum_j relu(a_i + b_j) g_j / M, chunked over i, recomputed in backward."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, g: torch.Tensor,
                chunk: int) -> torch.Tensor:
        ctx.save_for_backward(a, b, g)
        ctx.chunk = chunk
        m = b.shape[1]
        out = a.new_empty(a.shape[0], a.shape[1], g.shape[-1])
        for s in range(0, a.shape[1], chunk):
            p = (a[:, s:s + chunk, None] + b[:, None, :]).relu_().div_(m)
            torch.matmul(p, g, out=out[:, s:s + chunk])
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        a, b, g = ctx.saved_tensors
        chunk, m = ctx.chunk, b.shape[1]
        grad_a = torch.empty_like(a) if ctx.needs_input_grad[0] else None
        grad_b = torch.zeros_like(b) if ctx.needs_input_grad[1] else None
        grad_g = torch.zeros_like(g) if ctx.needs_input_grad[2] else None
        for s in range(0, a.shape[1], chunk):
            logits = a[:, s:s + chunk, None] + b[:, None, :]
            dy = grad_out[:, s:s + chunk]
            if grad_g is not None:
                grad_g += torch.matmul(logits.relu().div_(m).transpose(1, 2), dy)
            if grad_a is not None or grad_b is not None:
                d_logits = torch.matmul(dy, g.transpose(1, 2)).div_(m)
                d_logits.masked_fill_(logits <= 0, 0)
                if grad_a is not None:
                    grad_a[:, s:s + chunk] = d_logits.sum(dim=-1)
                if grad_b is not None:
                    grad_b += d_logits.sum(dim=-2)
        return grad_a, grad_b, grad_g, None


def concatenation_attention(theta: torch.Tensor, phi: torch.Tensor, value: torch.Tensor,
                            weight: torch.Tensor, bias: torch.Tensor | None = None,
                            chunk_size: int | None = None) -> torch.Tensor:
    """A v for the concatenation affinity, computed in query chunks; shape (B, N, Cv).

    ``chunk_size`` queries are processed at a time (default: as many as keep one
    (B, chunk, M) buffer under 2**22 elements). Exact: the same sums as the dense path.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f'chunk_size must be a positive integer, got {chunk_size}')
    with autocast_disabled(theta):
        theta, phi, value, weight = upcast(theta, phi, value, weight)
        a, b = concatenation_logits(theta, phi, weight, bias)
        if torch.onnx.is_in_onnx_export():
            # the chunk loop would fix N at trace time and writes into slices of one buffer:
            # the exported graph computes the same sums in one piece (the dense form)
            return torch.matmul((a.unsqueeze(-1) + b.unsqueeze(-2)).relu() / b.shape[1], value)
        if chunk_size is None:
            chunk_size = max(1, DEFAULT_CHUNK_ELEMENTS // max(1, b.shape[0] * b.shape[1]))
        return _ChunkedConcatenation.apply(a, b, value, int(chunk_size))


def concatenation_dense(theta: torch.Tensor, phi: torch.Tensor, value: torch.Tensor,
                        weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """The dense path: ``apply_affinity(concatenation_affinity(theta, phi, weight, bias),
    value)``."""
    return apply_affinity(concatenation_affinity(theta, phi, weight, bias), value)


def example_inputs(batch: int, n: int, channels: int, *, units: int = 2,
                   generator: Optional[torch.Generator] = None,
                   dtype: torch.dtype = torch.float32,
                   requires_grad: bool = False) -> tuple[list[torch.Tensor], dict]:
    """theta, phi and value (B, N, C') and the (1, 2C') weight of the projection of the
    concatenation (``units`` unused)."""
    shapes = [(batch, n, channels)] * 3 + [(1, 2 * channels)]
    return random_inputs(shapes, generator, dtype, requires_grad), {}


KERNEL = Kernel('concatenation', concatenation_dense, concatenation_attention,
                'relu(a_i + b_j) / M applied to v, dense against query chunks: NL '
                'concatenation', example_inputs)
