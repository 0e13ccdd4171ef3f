"""Kernel ``'dot_product'``: (theta phi^T / M) g (NL dot product, Wang et al. 2018 eq. 4;
mmcv ``NonLocal2d.dot_product``).

Dense path :func:`dot_product_dense`: :func:`dot_product_affinity` A_ij = theta_i . phi_j / M
(B, N, M), then A g. Efficient path :func:`dot_product_attention`: theta (phi^T g) / M by
associativity, O((N + M) C' Cv), never N x M. Both compute in float32 (float64 for float64
inputs) with autocast disabled.
"""
from __future__ import annotations

from typing import Optional

import torch

from .._precision import autocast_disabled, upcast
from .common import Kernel, apply_affinity, random_inputs

__all__ = ['dot_product_affinity', 'dot_product_attention', 'dot_product_dense']


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


def dot_product_dense(query: torch.Tensor, key: torch.Tensor,
                      value: torch.Tensor) -> torch.Tensor:
    """The dense path: ``apply_affinity(dot_product_affinity(query, key), value)``."""
    return apply_affinity(dot_product_affinity(query, key), value)


def example_inputs(batch: int, n: int, channels: int, *, units: int = 2,
                   generator: Optional[torch.Generator] = None,
                   dtype: torch.dtype = torch.float32,
                   requires_grad: bool = False) -> tuple[list[torch.Tensor], dict]:
    """Query, key and value (B, N, C') (``units`` unused)."""
    return random_inputs([(batch, n, channels)] * 3, generator, dtype, requires_grad), {}


KERNEL = Kernel('dot_product', dot_product_dense, dot_product_attention,
                '(q k^T / M) v against q (k^T v) / M: NL dot_product', example_inputs)
