"""Kernel ``'relu_dot'``: the normalised low-rank symmetric affinity of SNL/gSNL applied to
values, A v.

S = (R_t R_p^T + R_p R_t^T) / 2, R = relu(.) (SNL, Zhu et al. eq. 9 with the authors' ICCV'21
kernel), A = D^-1/2 S D^-1/2 ('symmetric') or D^-1 S ('random_walk'), d = S 1, zero degrees
give zero rows (:func:`normalize_affinity`).

Dense path :func:`relu_dot_dense`: :func:`relu_dot_affinity` S (B, N, N), normalised, then
A v. Efficient path :func:`relu_dot_attention`: S z = (R_t (R_p^T z) + R_p (R_t^T z)) / 2 and
d = S 1 by the same product, then the degree scalings are diagonal: O(N C' (C' + Cv)), never
N x N. :func:`relu_dot_affinity_rows` gives rows of A without forming N x N. Every function
computes in float32 (float64 for float64 inputs) with autocast disabled.
"""
from __future__ import annotations

from typing import Optional

import torch

from .._precision import autocast_disabled, upcast
from .common import Kernel, apply_affinity, inverse_degree, random_inputs

__all__ = ['NORMALIZATIONS', 'relu_dot_affinity', 'normalize_affinity', 'relu_dot_attention',
           'relu_dot_affinity_rows', 'relu_dot_dense']

#: Degree normalisations of the symmetric relu-dot affinity.
NORMALIZATIONS = ('symmetric', 'random_walk')


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}')


def relu_dot_affinity(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """S = (R_t R_p^T + R_p R_t^T) / 2 with R_t = relu(theta), R_p = relu(phi); (B, N, N).

    Symmetric and non-negative by construction (written as a sum with the transpose, not the
    authors' in-place ``att += att.permute(0, 2, 1)``, which reads an overlapping view).
    """
    with autocast_disabled(theta):
        r_t, r_p = (t.relu() for t in upcast(theta, phi))
        s = torch.matmul(r_t, r_p.transpose(1, 2))
        return (s + s.transpose(1, 2)) / 2


def normalize_affinity(affinity: torch.Tensor, normalization: str = 'symmetric') -> torch.Tensor:
    """Degree-normalise a non-negative (B, N, N) affinity S with degrees d = S 1.

    'symmetric': D^-1/2 S D^-1/2 (SNL authors' code); 'random_walk': D^-1 S (SNL paper text).
    Rows (and, for 'symmetric', columns) of zero degree are zero.
    """
    _check_normalization(normalization)
    with autocast_disabled(affinity):
        (affinity,) = upcast(affinity)
        degree = affinity.sum(dim=-1)
        if normalization == 'symmetric':
            inv_sqrt = inverse_degree(degree, 0.5)
            return inv_sqrt.unsqueeze(-1) * affinity * inv_sqrt.unsqueeze(-2)
        return inverse_degree(degree, 1.0).unsqueeze(-1) * affinity


def relu_dot_attention(theta: torch.Tensor, phi: torch.Tensor, value: torch.Tensor,
                       normalization: str = 'symmetric') -> torch.Tensor:
    """A v for A = normalize_affinity(relu_dot_affinity(theta, phi)), never forming N x N.

    With R_t, R_p (B, N, C'): S z = (R_t (R_p^T z) + R_p (R_t^T z)) / 2 and d = S 1, so the
    cost is O(N C' (C' + Cv)) time and O(N (C' + Cv)) memory. Returns (B, N, Cv).
    """
    _check_normalization(normalization)
    with autocast_disabled(theta):
        theta, phi, value = upcast(theta, phi, value)
        r_t, r_p = theta.relu(), phi.relu()

        def s_times(z: torch.Tensor) -> torch.Tensor:
            return (torch.matmul(r_t, torch.matmul(r_p.transpose(1, 2), z))
                    + torch.matmul(r_p, torch.matmul(r_t.transpose(1, 2), z))) / 2

        degree = s_times(torch.ones_like(value[..., :1]))  # (B, N, 1)
        if normalization == 'symmetric':
            inv_sqrt = inverse_degree(degree, 0.5)
            return inv_sqrt * s_times(inv_sqrt * value)
        return inverse_degree(degree, 1.0) * s_times(value)


def relu_dot_affinity_rows(theta: torch.Tensor, phi: torch.Tensor, index: torch.Tensor,
                           normalization: str = 'symmetric') -> torch.Tensor:
    """Rows ``index`` of normalize_affinity(relu_dot_affinity(theta, phi)), shape (B, Q, N),
    without forming N x N: S_i. = (r_t,i R_p^T + r_p,i R_t^T) / 2 for the Q rows, the degrees
    d = S 1 by the associative product of :func:`relu_dot_attention`, then the degree scaling
    (zero degrees give zero rows and columns). O(N C' (Q + 1)) time, O(Q N) memory."""
    _check_normalization(normalization)
    with autocast_disabled(theta):
        theta, phi = upcast(theta, phi)
        r_t, r_p = theta.relu(), phi.relu()
        rows = (torch.matmul(r_t[:, index], r_p.transpose(1, 2))
                + torch.matmul(r_p[:, index], r_t.transpose(1, 2))) / 2
        degree = (torch.matmul(r_t, r_p.sum(dim=1, keepdim=True).transpose(1, 2))
                  + torch.matmul(r_p, r_t.sum(dim=1, keepdim=True).transpose(1, 2)))[..., 0] / 2
        if normalization == 'symmetric':
            inv_sqrt = inverse_degree(degree, 0.5)
            return inv_sqrt[:, index].unsqueeze(-1) * rows * inv_sqrt.unsqueeze(-2)
        return inverse_degree(degree, 1.0)[:, index].unsqueeze(-1) * rows


def relu_dot_dense(theta: torch.Tensor, phi: torch.Tensor, value: torch.Tensor,
                   normalization: str = 'symmetric') -> torch.Tensor:
    """The dense path: ``apply_affinity(normalize_affinity(relu_dot_affinity(theta, phi),
    normalization), value)``."""
    return apply_affinity(normalize_affinity(relu_dot_affinity(theta, phi), normalization),
                          value)


def example_inputs(batch: int, n: int, channels: int, *, units: int = 2,
                   generator: Optional[torch.Generator] = None,
                   dtype: torch.dtype = torch.float32,
                   requires_grad: bool = False) -> tuple[list[torch.Tensor], dict]:
    """theta, phi and value (B, N, C'), the 'symmetric' normalisation (the one measured;
    'random_walk' costs the same products; ``units`` unused)."""
    tensors = random_inputs([(batch, n, channels)] * 3, generator, dtype, requires_grad)
    return tensors, dict(normalization='symmetric')


KERNEL = Kernel('relu_dot', relu_dot_dense, relu_dot_attention,
                'SNL/gSNL normalised relu-dot affinity A v against its associative product',
                example_inputs)
