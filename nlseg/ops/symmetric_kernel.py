"""Symmetric non-negative kernels of one shared embedding and their nonlocal diffusion (NS).

Tao et al. 2018, sec. 4.1: the kernel of a nonlocal stage should be symmetric and non-negative,
w(X_i, X_j) = w(X_j, X_i) >= 0 (eq. 12), which an embedded kernel is when both arguments go
through ONE embedding theta: w_theta(X_i, X_j) = w(theta(X_i), theta(X_j)) (eq. 13). With
t_i = theta(X_i) (B, N, C'):

- ``'gaussian'``: w_ij = exp(scale * t_i . t_j) (the embedded Gaussian of eq. 13; ``scale`` is
  1 / sqrt(C') with use_scale). Row-normalised it is softmax_j(scale * t_i . t_j).
- ``'relu_dot'``: w_ij = relu(t_i) . relu(t_j). Eq. 13 also names the dot product, which is
  symmetric but not non-negative; the ReLU of the embedding (the SNL authors' kernel) makes it
  non-negative as eq. 12 requires. ``scale`` cancels in the row normalisation and is unused.

The stage normalises the sum of each row by C_i(X) = sum_j w_ij (eq. 9), A = D^-1 W, and
applies the diffusion of eq. 8 to values v (B, N, Cv):

    (L v)_i = 1 / C_i(X) * sum_j w_ij (v_j - v_i) = (A v)_i - (A 1)_i v_i,

where (A 1)_i = 1, except for a position of zero degree (relu_dot only, relu(t_i) = 0): it has
no neighbours, its row of A is zero and so is its diffusion (no 0/0).

Dense references (materialise B x N x N): :func:`symmetric_kernel` (W),
:func:`symmetric_kernel_affinity` (A) and :func:`apply_diffusion` (L v for any A).
Efficient path (never N x N, exact): :func:`symmetric_kernel_diffusion`: fused softmax
attention with query = key = t for 'gaussian'; for 'relu_dot', W = R R^T has rank <= C', so
W v = R (R^T v) and the degrees d = R (R^T 1) cost O(N C' (C' + Cv)) time by associativity.
Every function computes in float32 (float64 for float64 inputs) with autocast disabled.
"""
from __future__ import annotations

from typing import Optional

import torch

from nlseg.validation import check_choice
from ._precision import autocast_disabled, upcast
from .affinity import _inverse_degree, softmax_affinity
from .attention import softmax_attention

__all__ = ['SYMMETRIC_KERNELS', 'symmetric_kernel', 'symmetric_kernel_affinity',
           'apply_diffusion', 'symmetric_kernel_diffusion']

#: Pairwise functions of one shared embedding (eq. 13) that are symmetric and non-negative.
SYMMETRIC_KERNELS = ('gaussian', 'relu_dot')


def symmetric_kernel(embedding: torch.Tensor, kernel: str, scale: float = 1.0) -> torch.Tensor:
    """W_ij = w(t_i, t_j) of eq. 12-13 (unnormalised), shape (B, N, N), symmetric and >= 0.

    The 'gaussian' W is exp of the raw logits (it overflows for large logits; the stage
    itself only ever uses its row-normalised form, see :func:`symmetric_kernel_affinity`).
    """
    check_choice('kernel', kernel, SYMMETRIC_KERNELS)
    with autocast_disabled(embedding):
        (t,) = upcast(embedding)
        if kernel == 'gaussian':
            return torch.matmul(t, t.transpose(1, 2)).mul(scale).exp()
        r = t.relu()
        return torch.matmul(r, r.transpose(1, 2))


def symmetric_kernel_affinity(embedding: torch.Tensor, kernel: str, scale: float = 1.0,
                              rows: Optional[torch.Tensor] = None) -> torch.Tensor:
    """A = D^-1 W, A_ij = w_ij / C_i(X) (eq. 8-9), shape (B, N, N); zero-degree rows zero.

    'gaussian' is the stable softmax_j(scale * t_i . t_j), equal to D^-1 W. ``rows`` (a 1-D
    long tensor of query positions) returns only those rows, (B, Q, N), without forming the
    other rows (the same values as the rows of the full A).
    """
    check_choice('kernel', kernel, SYMMETRIC_KERNELS)
    query = embedding if rows is None else embedding[:, rows]
    if kernel == 'gaussian':
        return softmax_affinity(query, embedding, scale)
    with autocast_disabled(embedding):
        t, q = upcast(embedding, query)
        r, r_q = t.relu(), q.relu()
        w = torch.matmul(r_q, r.transpose(1, 2))  # rows of W = R R^T
        return _inverse_degree(w.sum(dim=-1), 1.0).unsqueeze(-1) * w


def apply_diffusion(affinity: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """(L v)_i = sum_j A_ij (v_j - v_i) = (A v)_i - (A 1)_i v_i for a dense (B, N, N)
    row-normalised affinity and values (B, N, Cv) (eq. 8 with A = D^-1 W); (B, N, Cv)."""
    with autocast_disabled(affinity):
        affinity, value = upcast(affinity, value)
        return torch.matmul(affinity, value) - affinity.sum(dim=-1, keepdim=True) * value


def symmetric_kernel_diffusion(embedding: torch.Tensor, value: torch.Tensor, kernel: str,
                               scale: float = 1.0) -> torch.Tensor:
    """L v of eq. 8 for the shared-embedding kernel, never forming N x N; (B, N, Cv).

    Equal to ``apply_diffusion(symmetric_kernel_affinity(embedding, kernel, scale), value)``.
    'gaussian': softmax_attention(t, t, v) - v (softmax rows sum to 1). 'relu_dot': with
    R = relu(t), d = R (R^T 1) and L v = d^-1 R (R^T v) - [d > 0] v.
    """
    check_choice('kernel', kernel, SYMMETRIC_KERNELS)
    if embedding.shape[:2] != value.shape[:2]:
        raise ValueError('embedding and value must have the same (B, N); got '
                         f'{tuple(embedding.shape)} and {tuple(value.shape)}')
    if kernel == 'gaussian':
        return softmax_attention(embedding, embedding, value, scale) - value
    with autocast_disabled(embedding):
        t, v = upcast(embedding, value)
        r = t.relu()
        degree = torch.matmul(r, r.sum(dim=1, keepdim=True).transpose(1, 2))  # (B, N, 1)
        inv_degree = _inverse_degree(degree, 1.0)
        connected = (degree > 0).to(v.dtype)
        return inv_degree * torch.matmul(r, torch.matmul(r.transpose(1, 2), v)) - connected * v
