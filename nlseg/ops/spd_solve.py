"""Solve A X = B for a batch of small symmetric positive definite A by Gauss-Jordan
elimination written with matrix and element-wise ops only.

This is the exportable form of the ridge solve of Hamburger's concept decomposition
(Geng et al., ICLR 2021, appendix B, eq. 14: C = (D^T D + beta I)^-1 D^T X, an r x r SPD
system): ONNX has no linear-solve operator, so under ``torch.onnx.export`` the ridge codes are
computed by :func:`spd_solve` instead of ``torch.linalg.solve`` (which eager PyTorch keeps
using). For k = 1..r the pivot row k of [A | B] is divided by its pivot a_kk and subtracted,
times a_ik, from every other row i:

    row_k <- row_k / a_kk,    row_i <- row_i - a_ik row_k   (i != k),

after which A is the identity and B holds X. No pivoting is needed: the pivots of an SPD matrix
stay positive (they are ratios of leading principal minors), and elimination without pivoting
is backward stable for SPD matrices. The r steps are unrolled (r is a fixed size, the number of
atoms), each costs O(r (r + n)) for a right-hand side of n columns, so the whole solve is
O(r^2 (r + n)), the cost of an LU solve. Exact in real arithmetic; in float32 it agrees with
``torch.linalg.solve`` to rounding (tested).
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ['spd_solve']


def spd_solve(a: Tensor, b: Tensor) -> Tensor:
    """X with A X = B, for A (..., r, r) symmetric positive definite and B (..., r, n).

    Gauss-Jordan elimination without pivoting (module docstring); uses slicing, division,
    multiplication, subtraction and ``torch.where`` only, so it exports to ONNX.
    """
    if a.dim() < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f'spd_solve: a must be (..., r, r), got {tuple(a.shape)}')
    if b.dim() != a.dim() or b.shape[-2] != a.shape[-1]:
        raise ValueError(f'spd_solve: b must be (..., r, n) with r = {a.shape[-1]}, got '
                         f'{tuple(b.shape)}')
    r = a.shape[-1]
    rows = torch.arange(r, device=a.device).unsqueeze(-1)  # (r, 1)
    for k in range(r):
        pivot = a[..., k:k + 1, k:k + 1]                   # (..., 1, 1)
        row_a = a[..., k:k + 1, :] / pivot                 # (..., 1, r)
        row_b = b[..., k:k + 1, :] / pivot                 # (..., 1, n)
        col = a[..., :, k:k + 1]                           # (..., r, 1)
        is_pivot_row = rows == k
        a = torch.where(is_pivot_row, row_a, a - col * row_a)
        b = torch.where(is_pivot_row, row_b, b - col * row_b)
    return b
