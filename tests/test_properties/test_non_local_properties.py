"""Property-based tests (hypothesis) of the non-local family of blocks: NonLocalBlock (every
mode, with and without sub_sample), AdaptiveNonLocalBlock, NonLocalStage and
SpectralNonLocalBlock (SNL and gSNL, both normalisations).

Over batch 1..3, H and W in 1..33, in_channels / reduction pairs (C' = 1..4), float32 and
float64, BN or no norm, and random (non-identity) parameters, for every example:

* the output has the input's shape and dtype and is finite, and so is the input gradient;
* impl='dense' == impl='efficient' (forward and input gradient; SNL's input gradient in
  float64 only, see ``check_dense_equals_efficient``) to a dtype tolerance, and impl='auto'
  gives exactly the output of the path it resolves to (dense or efficient);
* in eval mode two calls give identical outputs (torch.equal), and every image's output
  does not depend on the rest of its batch.

The examples are reproducible (``derandomize=True``, see :mod:`.strategies`).
``test_check_detects_a_broken_efficient_op`` shows that the dense == efficient check fails
when an efficient kernel is off by 1 %.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from nlseg.models.blocks import AdaptiveNonLocalBlock, NonLocalBlock, NonLocalStage, \
    SpectralNonLocalBlock
from nlseg.models.blocks.non_local_base import SOFTMAX_MODES
from nlseg.ops.affinity import NORMALIZATIONS
from .strategies import BN, DTYPES, PROPERTY_SETTINGS, assert_close_scaled, batches, \
    channel_configs, randn, randomize_parameters, seeds, sides, tolerance

IMPLS = ('dense', 'efficient', 'auto')

#: family -> (block class, strategy of its specific constructor arguments). The NL modes
#: are read from the class, so a mode added later is covered without editing this table.
FAMILIES: dict[str, tuple[type, st.SearchStrategy]] = {
    **{f'nl_{mode}': (NonLocalBlock, st.fixed_dictionaries(dict(
        mode=st.just(mode), sub_sample=st.booleans(), use_scale=st.booleans())))
       for mode in NonLocalBlock.modes},
    'arnl': (AdaptiveNonLocalBlock, st.fixed_dictionaries(dict(
        mode=st.sampled_from(SOFTMAX_MODES), use_scale=st.booleans(),
        lambda_act=st.sampled_from((None, 'softplus'))))),
    'ns': (NonLocalStage, st.fixed_dictionaries(dict(
        mode=st.sampled_from(SOFTMAX_MODES), num_units=st.integers(1, 3),
        use_scale=st.booleans()))),
    'snl': (SpectralNonLocalBlock, st.fixed_dictionaries(dict(
        generalized=st.booleans(), affinity=st.sampled_from(NORMALIZATIONS)))),
}


@dataclass(frozen=True)
class BlockCase:
    """One drawn example: a block configuration, an input shape, dtype and seeds."""
    cls: type
    channels: int
    reduction: int
    batch: int
    height: int
    width: int
    dtype: torch.dtype = torch.float32
    norm_cfg: Optional[dict] = None
    input_scale: float = 1.0
    seed: int = 0
    kwargs: dict = field(default_factory=dict)

    def build(self, impl: str) -> nn.Module:
        """The block with parameters (and BN statistics) randomised from ``seed``: the same
        values for every ``impl``. Eval mode, in ``dtype``."""
        block = self.cls(self.channels, reduction=self.reduction, norm_cfg=self.norm_cfg,
                         impl=impl, **self.kwargs)
        return randomize_parameters(block, self.seed).to(self.dtype).eval()

    def input(self) -> torch.Tensor:
        return randn(self.batch, self.channels, self.height, self.width, seed=self.seed + 1,
                     dtype=self.dtype, scale=self.input_scale)


@st.composite
def block_cases(draw: st.DrawFn, family: str, dtype: Optional[torch.dtype] = None) -> BlockCase:
    """A case of ``family``; in ``dtype``, or a drawn one when None."""
    cls, kwargs = FAMILIES[family]
    channels, reduction = draw(channel_configs())
    dtype = draw(st.sampled_from(DTYPES)) if dtype is None else dtype
    return BlockCase(cls=cls, channels=channels, reduction=reduction, batch=draw(batches),
                     height=draw(sides), width=draw(sides), dtype=dtype,
                     norm_cfg=draw(st.sampled_from([None, BN])),
                     input_scale=draw(st.sampled_from([0.1, 1.0, 4.0])), seed=draw(seeds),
                     kwargs=draw(kwargs))


def output_and_input_grad(block: nn.Module, x: torch.Tensor,
                          upstream: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """block(x) and d<block(x), upstream>/dx."""
    x = x.detach().requires_grad_()
    out = block(x)
    (grad,) = torch.autograd.grad((out * upstream).sum(), x)
    return out.detach(), grad


def check_dense_equals_efficient(case: BlockCase) -> None:
    """Shape, dtype, finiteness; dense == efficient (forward, input gradient); auto == the
    path it resolves to, exactly."""
    x = case.input()
    upstream = randn(*x.shape, seed=case.seed + 2, dtype=case.dtype)
    results = {impl: output_and_input_grad(case.build(impl), x, upstream) for impl in IMPLS}
    for impl, (out, grad) in results.items():
        assert out.shape == x.shape and out.dtype == x.dtype, (impl, out.shape, out.dtype)
        assert torch.isfinite(out).all() and torch.isfinite(grad).all(), impl
    assert any(torch.equal(results['auto'][0], results[i][0]) for i in ('dense', 'efficient'))
    tol = tolerance(case.dtype)
    (dense, dense_grad), (eff, eff_grad) = results['dense'], results['efficient']
    assert_close_scaled(eff, dense, tol, 'efficient vs dense output')
    if case.cls is SpectralNonLocalBlock and case.dtype != torch.float64:
        # D^-1 S and D^-1/2 S D^-1/2 are 0-homogeneous in a row's relu features, so their
        # gradient grows like 1 / degree: at a degree close to 0 but positive (one tiny relu
        # feature, the others dead) the float32 gradients of BOTH paths are off the exact
        # (float64) one by far more than rounding (seen: 2.4e-4 of max |grad| for dense,
        # 8e-5 for efficient). SNL's gradients are compared in float64, where the same
        # conditioning stays well inside the tolerance.
        return
    assert_close_scaled(eff_grad, dense_grad, 10 * tol, 'efficient vs dense input gradient')


@pytest.mark.parametrize('dtype', DTYPES, ids=str)
@pytest.mark.parametrize('family', list(FAMILIES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_shape_finite_and_dense_equals_efficient(family: str, dtype: torch.dtype,
                                                 data: st.DataObject) -> None:
    check_dense_equals_efficient(data.draw(block_cases(family, dtype), label='case'))


@pytest.mark.parametrize('family', list(FAMILIES))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_eval_is_deterministic_and_batch_independent(family: str,
                                                     data: st.DataObject) -> None:
    case = data.draw(block_cases(family), label='case')
    x = case.input()
    for impl in ('dense', 'efficient'):
        block = case.build(impl)
        with torch.no_grad():
            first, second = block(x), block(x)
            singles = torch.cat([block(x[i:i + 1]) for i in range(case.batch)])
        assert torch.equal(first, second), impl
        assert_close_scaled(singles, first, tolerance(case.dtype),
                            f'{impl}: images one by one vs batched')


# ------------------------------------------------------------- the check can fail
_FIXED = dict(channels=8, reduction=2, batch=2, height=5, width=6, norm_cfg=BN, seed=3)
BROKEN_OPS: list[tuple[str, str, BlockCase]] = [
    ('non_local', 'softmax_attention',
     BlockCase(NonLocalBlock, kwargs=dict(mode='embedded_gaussian'), **_FIXED)),
    ('non_local', 'softmax_attention',
     BlockCase(AdaptiveNonLocalBlock, kwargs=dict(mode='gaussian'), **_FIXED)),
    ('non_local', 'dot_product_attention',
     BlockCase(NonLocalBlock, kwargs=dict(mode='dot_product', sub_sample=True), **_FIXED)),
    ('non_local', 'concatenation_attention',
     BlockCase(NonLocalBlock, kwargs=dict(mode='concatenation'), **_FIXED)),
    ('non_local_stage', 'softmax_attention', BlockCase(NonLocalStage, **_FIXED)),
    ('spectral_non_local', 'relu_dot_attention',
     BlockCase(SpectralNonLocalBlock, kwargs=dict(generalized=True), **_FIXED)),
]


@pytest.mark.parametrize('module_name,op_name,case', BROKEN_OPS,
                         ids=[f'{m}.{o}-{c.cls.__name__}' for m, o, c in BROKEN_OPS])
def test_check_detects_a_broken_efficient_op(module_name: str, op_name: str, case: BlockCase,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """With the block's efficient op scaled by 1.01 the property fails (in float32, the
    looser tolerance): randomised parameters make the non-local term visible."""
    check_dense_equals_efficient(case)  # passes as it is
    module = importlib.import_module(f'nlseg.models.blocks.{module_name}')
    original: Callable[..., Any] = getattr(module, op_name)
    monkeypatch.setattr(module, op_name, lambda *a, **k: 1.01 * original(*a, **k))
    with pytest.raises(AssertionError, match='efficient vs dense output'):
        check_dense_equals_efficient(case)


def test_regression_arnl_gaussian_large_logits_gradient() -> None:
    """Found by these properties (1 in ~1000 examples): logits lambda_i x_i . x_j of several
    thousand (unscaled gaussian mode, softplus lambda up to 22). The CPU flash backward then
    mixed the forward kernel's logsumexp and output with recomputed logits and its float32
    input gradient was 20x further from the float64 one than the dense path's (1.25x the
    tolerance from dense); it now recomputes a self-consistent softmax."""
    check_dense_equals_efficient(BlockCase(
        AdaptiveNonLocalBlock, channels=16, reduction=4, batch=1, height=33, width=1,
        input_scale=4.0, seed=2, kwargs=dict(mode='gaussian', use_scale=False,
                                             lambda_act='softplus')))
