"""Dense affinities of the non-local family and their associative (low-rank) products.

Notation: query features theta (B, N, C'), key features phi (B, M, C'), values g (B, M, Cv).
Every function computes in float32 (float64 for float64 inputs) with autocast disabled, so
logits, softmax and degree normalisation are safe under float16/bfloat16 autocast.

Dense affinities (the reference implementations, they materialise B x N x M):

- :func:`softmax_affinity`: A_ij = softmax_j(scale * theta_i . phi_j) (NL gaussian /
  embedded gaussian, Wang et al. 2018 eq. 2-3; ARNLB with lambda folded into theta).
- :func:`dot_product_affinity`: A_ij = theta_i . phi_j / M (NL dot product, eq. 4).
- :func:`relu_dot_affinity`: S = (R_t R_p^T + R_p R_t^T) / 2, R = relu(.) (SNL, Zhu et al.
  eq. 9 with the authors' ICCV'21 kernel), then :func:`normalize_affinity`:
  A = D^-1/2 S D^-1/2 ('symmetric') or D^-1 S ('random_walk'), d = S 1, zero degrees give
  zero rows.

Associative products (the efficient paths, O((N + M) C' Cv) time, never N x M):

- :func:`dot_product_attention`: A g = theta (phi^T g) / M.
- :func:`relu_dot_attention`: S z = (R_t (R_p^T z) + R_p (R_t^T z)) / 2, d = S 1 by the same
  product, then the degree scalings are diagonal.
"""
from __future__ import annotations

import torch

from ._precision import autocast_disabled, upcast

__all__ = [
    'NORMALIZATIONS', 'softmax_affinity', 'dot_product_affinity', 'dot_product_attention',
    'relu_dot_affinity', 'normalize_affinity', 'relu_dot_attention', 'relu_dot_affinity_rows',
    'apply_affinity'
]

#: Degree normalisations of the symmetric relu-dot affinity.
NORMALIZATIONS = ('symmetric', 'random_walk')


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}')


def softmax_affinity(query: torch.Tensor, key: torch.Tensor, scale: float) -> torch.Tensor:
    """A_ij = softmax_j(scale * q_i . k_j), shape (B, N, M), in float32 (or float64)."""
    with autocast_disabled(query):
        query, key = upcast(query, key)
        logits = torch.matmul(query, key.transpose(1, 2))
        return (logits * scale).softmax(dim=-1)


def dot_product_affinity(query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
    """A_ij = q_i . k_j / M (mmcv ``NonLocal2d.dot_product``), shape (B, N, M)."""
    with autocast_disabled(query):
        query, key = upcast(query, key)
        return torch.matmul(query, key.transpose(1, 2)) / key.shape[1]


def dot_product_attention(query: torch.Tensor, key: torch.Tensor,
                          value: torch.Tensor) -> torch.Tensor:
    """(q k^T / M) v computed as q (k^T v) / M: O((N + M) D Dv), shape (B, N, Dv)."""
    with autocast_disabled(query):
        query, key, value = upcast(query, key, value)
        return torch.matmul(query, torch.matmul(key.transpose(1, 2), value) / key.shape[1])


def relu_dot_affinity(theta: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """S = (R_t R_p^T + R_p R_t^T) / 2 with R_t = relu(theta), R_p = relu(phi); (B, N, N).

    Symmetric and non-negative by construction (written as a sum with the transpose, not the
    authors' in-place ``att += att.permute(0, 2, 1)``, which reads an overlapping view).
    """
    with autocast_disabled(theta):
        r_t, r_p = (t.relu() for t in upcast(theta, phi))
        s = torch.matmul(r_t, r_p.transpose(1, 2))
        return (s + s.transpose(1, 2)) / 2


def _inverse_degree(degree: torch.Tensor, power: float) -> torch.Tensor:
    """d^-power where d > 0 and 0 where d == 0 (zero degrees give zero rows, no NaN)."""
    positive = degree > 0
    safe = torch.where(positive, degree, torch.ones_like(degree))
    return torch.where(positive, safe.pow(-power), torch.zeros_like(degree))


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
            inv_sqrt = _inverse_degree(degree, 0.5)
            return inv_sqrt.unsqueeze(-1) * affinity * inv_sqrt.unsqueeze(-2)
        return _inverse_degree(degree, 1.0).unsqueeze(-1) * affinity


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
            inv_sqrt = _inverse_degree(degree, 0.5)
            return inv_sqrt * s_times(inv_sqrt * value)
        return _inverse_degree(degree, 1.0) * s_times(value)


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
            inv_sqrt = _inverse_degree(degree, 0.5)
            return inv_sqrt[:, index].unsqueeze(-1) * rows * inv_sqrt.unsqueeze(-2)
        return _inverse_degree(degree, 1.0)[:, index].unsqueeze(-1) * rows


def apply_affinity(affinity: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A v for a dense (B, N, M) affinity and values (B, M, Cv), in float32 (or float64)."""
    with autocast_disabled(affinity):
        affinity, value = upcast(affinity, value)
        return torch.matmul(affinity, value)
