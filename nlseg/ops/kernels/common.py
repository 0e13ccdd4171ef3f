"""What every kernel of :mod:`nlseg.ops.kernels` shares: the :class:`Kernel` record, the dense
product A v, the inverse degree of the normalised kernels and the example inputs.

Every function computes in float32 (float64 for float64 inputs) with autocast disabled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch

from .._precision import autocast_disabled, upcast

__all__ = ['Kernel', 'apply_affinity']


@dataclass(frozen=True)
class Kernel:
    """A kernel with two exact paths that ``impl`` chooses between.

    Attributes:
        name: the registry key (:data:`nlseg.ops.kernels.KERNELS`), the ``kernel`` of the
            blocks and the kernel column of the measured crossover table.
        dense: the reference path, which materialises the N x M affinity.
        efficient: the path that never forms N x M (fused attention, associativity or
            query chunks); same signature and, in exact arithmetic, same result as ``dense``.
        doc: one line: what the kernel computes, which blocks use it.
        example_inputs: ``example_inputs(batch, n, channels, *, units=2, generator=None,
            dtype=torch.float32, requires_grad=False)`` -> ``(tensors, params)`` such that
            ``dense(*tensors, **params)`` (and ``efficient``) run at N = M = ``n``, C' =
            ``channels``: what the calibration times and the tests compare.
    """

    name: str
    dense: Callable
    efficient: Callable
    doc: str
    example_inputs: Callable


def apply_affinity(affinity: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A v for a dense (B, N, M) affinity and values (B, M, Cv), in float32 (or float64)."""
    with autocast_disabled(affinity):
        affinity, value = upcast(affinity, value)
        return torch.matmul(affinity, value)


def inverse_degree(degree: torch.Tensor, power: float) -> torch.Tensor:
    """d^-power where d > 0 and 0 where d == 0 (zero degrees give zero rows, no NaN)."""
    positive = degree > 0
    safe = torch.where(positive, degree, torch.ones_like(degree))
    return torch.where(positive, safe.pow(-power), torch.zeros_like(degree))


def random_inputs(shapes: Sequence[tuple], generator: Optional[torch.Generator] = None,
                  dtype: torch.dtype = torch.float32,
                  requires_grad: bool = False) -> list[torch.Tensor]:
    """One standard normal tensor * 0.5 per shape, drawn in order from ``generator`` (a fresh
    one seeded 0 when None)."""
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    return [(torch.randn(*s, generator=generator, dtype=dtype) * 0.5)
            .requires_grad_(requires_grad) for s in shapes]
