"""Kernel ``'ns_stage'``: the nonlocal stage's (NS, Tao et al. 2018) shared affinity applied by
its units, and the symmetric non-negative kernels of one shared embedding with their nonlocal
diffusion.

The kernel (what ``impl='auto'`` decides for the softmax modes of ``NonLocalStage``): one
softmax affinity A = softmax_j(scale q_i . k_j) shared by the units, each unit's values g
diffused, (A - I) g = A g - g (softmax rows sum to 1). Dense path :func:`ns_stage_dense`: A
formed once, multiplied per value. Efficient path :func:`ns_stage_efficient`: fused softmax
attention per value, never N x M. (The stage's 'symmetric_relu_dot' mode decides by the
``'relu_dot'`` kernel's crossover.)

The symmetric kernels (eq. 12-13) follow.

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
from .._precision import autocast_disabled, upcast
from .common import Kernel, apply_affinity, inverse_degree, random_inputs
from .softmax import softmax_affinity, softmax_attention

__all__ = ['SYMMETRIC_KERNELS', 'symmetric_kernel', 'symmetric_kernel_affinity',
           'apply_diffusion', 'symmetric_kernel_diffusion', 'ns_stage_dense',
           'ns_stage_efficient']

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
        return inverse_degree(w.sum(dim=-1), 1.0).unsqueeze(-1) * w


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
        inv_degree = inverse_degree(degree, 1.0)
        connected = (degree > 0).to(v.dtype)
        return inv_degree * torch.matmul(r, torch.matmul(r.transpose(1, 2), v)) - connected * v


def ns_stage_dense(query: torch.Tensor, key: torch.Tensor, *values: torch.Tensor,
                   scale: float) -> tuple[torch.Tensor, ...]:
    """(A - I) g for each of ``values`` (B, N, Cv) with A = softmax_affinity(query, key,
    scale) formed ONCE: the dense path of the NS stage's softmax modes."""
    affinity = softmax_affinity(query, key, scale)
    return tuple(apply_affinity(affinity, g) - g for g in values)


def ns_stage_efficient(query: torch.Tensor, key: torch.Tensor, *values: torch.Tensor,
                       scale: float) -> tuple[torch.Tensor, ...]:
    """(A - I) g for each of ``values`` by fused softmax attention per value (never N x N):
    the efficient path of the NS stage's softmax modes."""
    return tuple(softmax_attention(query, key, g, scale) - g for g in values)


def example_inputs(batch: int, n: int, channels: int, *, units: int = 2,
                   generator: Optional[torch.Generator] = None,
                   dtype: torch.dtype = torch.float32,
                   requires_grad: bool = False) -> tuple[list[torch.Tensor], dict]:
    """Query, key and one value per unit (B, N, C'); scale 1 / sqrt(C')."""
    tensors = random_inputs([(batch, n, channels)] * (2 + units), generator, dtype,
                            requires_grad)
    return tensors, dict(scale=channels ** -0.5)


KERNEL = Kernel('ns_stage', ns_stage_dense, ns_stage_efficient,
                "NS stage: one shared softmax affinity applied per unit, (A - I) g: dense forms "
                "A once, efficient runs fused attention per unit", example_inputs)
