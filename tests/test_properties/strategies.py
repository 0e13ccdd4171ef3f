"""Shared hypothesis settings, strategies and checks of the property-based tests.

Reproducibility: :data:`PROPERTY_SETTINGS` sets ``derandomize=True``, so hypothesis draws
its examples from a seed derived from each test function (not from the clock): every run,
locally and in CI, checks the same examples, and a failure seen once is seen again on the
next run. ``database=None``: nothing is written to ``.hypothesis/``. ``deadline=None``:
per-example timings vary too much on a shared 2-core machine for a deadline to mean
anything. Tensors are drawn from torch generators seeded by an integer that hypothesis
draws, so hypothesis controls (and reports, on failure) every random choice.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

__all__ = ['PROPERTY_SETTINGS', 'BN', 'DTYPES', 'sides', 'batches', 'seeds',
           'channel_configs', 'randomize_parameters', 'randn', 'assert_close_scaled',
           'tolerance']

#: Settings of every property test: reproducible (see the module docstring) and small.
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                             database=None, print_blob=False,
                             suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.data_too_large])

BN = dict(type='BN')
DTYPES = (torch.float32, torch.float64)

#: Spatial sides 1..33, with the edges (1, 2, 33) drawn more often than uniform sampling
#: would (a side of 1 is where pooling and degree normalisation degenerate).
sides = st.one_of(st.sampled_from([1, 2, 33]), st.integers(1, 33))
batches = st.integers(1, 3)
seeds = st.integers(0, 2 ** 31 - 1)


@st.composite
def channel_configs(draw: st.DrawFn, max_inter: int = 4) -> tuple[int, int]:
    """(in_channels, reduction) with C' = in_channels // reduction >= 1: a reduction in
    1..4, C' in 1..max_inter and a remainder < reduction (so reductions that do not divide
    the channels, C = 5 with reduction 2, are drawn too). in_channels is 1..19."""
    reduction = draw(st.integers(1, 4))
    inter = draw(st.integers(1, max_inter))
    remainder = draw(st.integers(0, reduction - 1))
    return reduction * inter + remainder, reduction


def randomize_parameters(module: nn.Module, seed: int, std: float = 0.3) -> nn.Module:
    """Overwrite every floating parameter and buffer with N(0, std^2) draws (BN running
    variances with U(0.5, 1.5)), from a generator seeded with ``seed``.

    The blocks' own init zeroes the output norm (or conv), which makes them the identity
    and any dense/efficient comparison trivially true; after this no term is zero.
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + 0.5)
            else:
                t.copy_(std * torch.randn(t.shape, generator=g, dtype=t.dtype))
    return module


def randn(*shape: int, seed: int, dtype: torch.dtype = torch.float32,
          scale: float = 1.0) -> torch.Tensor:
    """scale * N(0, 1) of ``shape`` from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, generator=g, dtype=dtype)


def tolerance(dtype: torch.dtype) -> float:
    """Relative tolerance of a comparison of two exact-in-real-arithmetic computations that
    round differently (different kernels, summation orders): float32 vs float64."""
    return 1e-12 if dtype == torch.float64 else 1e-5


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, tol: float,
                        what: str = '') -> None:
    """|actual - expected| <= tol * (|expected| + max(1, max |expected|)) elementwise.

    The absolute part is relative to the largest entry: entries that are sums of terms of
    the magnitude of the largest one carry that much rounding even when they are small.
    """
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(1.0, float(expected.detach().abs().max())) if expected.numel() else 1.0
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol * scale,
                               msg=lambda m: f'{what}: {m}')
