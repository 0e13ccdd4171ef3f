"""Property-based tests (hypothesis) of the NLTVSoftmax block (kNN graph + NLTV-regularised
softmax), over batch 1..3, H and W in 1..33, 1..5 classes, k = 1..8 neighbours, graphs from
the logits or from separate features, the solver settings (lam, eps, tau including 'auto',
iterations, tolerance), float32 and float64, and degenerate logits (all zero, huge):

* the output is a (B, K, H, W) probability map: finite, in [0, 1], summing to 1 over the
  classes; log=True gives its logarithm;
* eval mode is deterministic (torch.equal over two calls); without a stopping tolerance an
  image's output does not depend on the rest of its batch (with one, the batch iterates
  until every image has converged, by design);
* lam = 0 is softmax(logits / eps);
* training mode unrolls to a finite output with a finite gradient (also of a learnable
  graph);
* k >= H * W (no k other positions, e.g. a 1x1 map) is a clear ValueError naming k and N.

The examples are reproducible (``derandomize=True``, see :mod:`.strategies`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from nlseg.models.blocks import NLTVSoftmax
from .strategies import DTYPES, PROPERTY_SETTINGS, assert_close_scaled, batches, randn, \
    seeds, sides, tolerance


@dataclass(frozen=True)
class NLTVCase:
    """One drawn example: the block's arguments and the input."""
    batch: int
    height: int
    width: int
    classes: int
    feat_channels: Optional[int]  # None: the graph is built from the logits
    k: int
    lam: float
    eps: float
    tau: Union[float, str]
    iters: int
    tol: Optional[float]
    feature_norm: Optional[str]
    logit_kind: str
    dtype: torch.dtype
    seed: int

    def build(self, **kwargs) -> NLTVSoftmax:
        args = dict(k=self.k, lam=self.lam, eps=self.eps, tau=self.tau, test_iters=self.iters,
                    train_iters=min(self.iters, 3), tol=self.tol,
                    feature_norm=self.feature_norm)
        args.update(kwargs)
        return NLTVSoftmax(**args)

    def inputs(self) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        shape = (self.batch, self.classes, self.height, self.width)
        if self.logit_kind == 'zeros':
            logits = torch.zeros(shape, dtype=self.dtype)
        else:
            scale = {'random': 2.0, 'huge': 100.0}[self.logit_kind]
            logits = randn(*shape, seed=self.seed, dtype=self.dtype, scale=scale)
        feats = None
        if self.feat_channels is not None:
            feats = torch.rand(self.batch, self.feat_channels, self.height, self.width,
                               generator=torch.Generator().manual_seed(self.seed + 1),
                               dtype=self.dtype)
        return logits, feats


@st.composite
def nltv_cases(draw: st.DrawFn, supported: bool = True) -> NLTVCase:
    """A case with k < H * W (``supported``) or k >= H * W (not supported)."""
    h, w = draw(sides), draw(sides)
    if supported:
        if h * w == 1:
            w = draw(st.integers(2, 33))
        k = draw(st.integers(1, min(8, h * w - 1)))
    else:
        h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        k = draw(st.integers(h * w, h * w + 2))
    return NLTVCase(batch=draw(batches), height=h, width=w, classes=draw(st.integers(1, 5)),
                    feat_channels=draw(st.sampled_from([None, 1, 3])), k=k,
                    lam=draw(st.sampled_from([0.0, 0.5, 3.0])),
                    eps=draw(st.sampled_from([0.5, 1.0])),
                    tau=draw(st.sampled_from([0.03, 'auto'])), iters=draw(st.integers(0, 15)),
                    tol=draw(st.sampled_from([None, 1e-5])),
                    feature_norm=draw(st.sampled_from([None, 'l2'])),
                    logit_kind=draw(st.sampled_from(['random', 'zeros', 'huge'])),
                    dtype=draw(st.sampled_from(DTYPES)), seed=draw(seeds))


def check_probabilities(p: torch.Tensor, case: NLTVCase, what: str) -> None:
    assert p.shape == (case.batch, case.classes, case.height, case.width), (what, p.shape)
    assert p.dtype == case.dtype, (what, p.dtype)
    assert torch.isfinite(p).all() and (p >= 0).all() and (p <= 1).all(), what
    assert_close_scaled(p.sum(1), torch.ones_like(p[:, 0]), tolerance(case.dtype),
                        f'{what}: sum over classes')


@PROPERTY_SETTINGS
@given(case=nltv_cases())
def test_eval_probabilities_deterministic(case: NLTVCase) -> None:
    logits, feats = case.inputs()
    block = case.build().eval()
    first = block(logits, feats)
    check_probabilities(first, case, 'eval')
    assert torch.equal(block(logits, feats), first)
    log_p = block(logits, feats, log=True)
    assert torch.isfinite(log_p).all()
    assert_close_scaled(log_p.exp(), first, 10 * tolerance(case.dtype), 'exp(log=True)')
    if case.lam == 0:
        assert_close_scaled(first, torch.softmax(logits / case.eps, dim=1),
                            10 * tolerance(case.dtype), 'lam = 0 vs softmax(logits / eps)')
    if case.tol is None:
        singles = torch.cat([block(logits[i:i + 1], None if feats is None else feats[i:i + 1])
                             for i in range(case.batch)])
        assert_close_scaled(singles, first, 10 * tolerance(case.dtype),
                            'images one by one vs batched')


@PROPERTY_SETTINGS
@given(case=nltv_cases(), learnable_graph=st.booleans(),
       grad=st.sampled_from(('bptt', 'one_step')))
def test_train_finite_output_and_gradients(case: NLTVCase, learnable_graph: bool,
                                           grad: str) -> None:
    logits, feats = case.inputs()
    logits.requires_grad_()
    block = case.build(learnable_graph=learnable_graph, grad=grad).train()
    out = block(logits, feats)
    check_probabilities(out, case, 'train')
    upstream = randn(*out.shape, seed=case.seed + 2, dtype=out.dtype)
    params = list(block.parameters())
    grads = torch.autograd.grad((out * upstream).sum(), [logits, *params], allow_unused=True)
    assert grads[0] is not None and torch.isfinite(grads[0]).all()
    assert all(g is None or torch.isfinite(g).all() for g in grads[1:])


@PROPERTY_SETTINGS
@given(case=nltv_cases(supported=False))
def test_k_not_below_positions_is_a_clear_error(case: NLTVCase) -> None:
    logits, feats = case.inputs()
    n = case.height * case.width
    with pytest.raises(ValueError, match=rf'k must be an int with 1 <= k < N = H \* W = {n}, '
                                         rf'got {case.k}'):
        case.build().eval()(logits, feats)
