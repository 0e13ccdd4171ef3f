"""Property-based tests (hypothesis) of the hams (NMF2D, VQ2D, CD2D) and the Hamburger block.

Over batch 1..3, H and W in 1..33, groups MD_S 1..3 of d = 1..6 channels, MD_R 1..8 atoms
(more atoms than channels or positions included), 1..3 iterations, float32 and float64,
and degenerate inputs (all zero, constant, a single non-zero entry, tiny and huge scales):

* the output has the input's shape and dtype and is finite (eval and train, and the
  training gradient);
* eval mode is deterministic: the bases come from a generator seeded with ``eval_seed``, so
  two calls give identical outputs (torch.equal) whatever the global RNG state, and an
  image's output does not depend on the rest of its batch;
* grad='one_step' and grad='bptt' give identical forward values (they differ only in
  what autograd records);
* ``rand_init=False``: eval is deterministic and the online update keeps the bases finite
  with unit (or zero) atoms.

The examples are reproducible (``derandomize=True``, see :mod:`.strategies`).
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from nlseg.models.blocks import CD2D, NMF2D, VQ2D, Hamburger
from .strategies import BN, DTYPES, PROPERTY_SETTINGS, assert_close_scaled, batches, randn, \
    randomize_parameters, seeds, sides, tolerance

HAMS: dict[str, type] = {'NMF': NMF2D, 'VQ': VQ2D, 'CD': CD2D}
INPUT_KINDS = ('random', 'zeros', 'constant', 'one_hot', 'tiny', 'huge')


def make_input(kind: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int,
               non_negative: bool) -> torch.Tensor:
    """An input of ``kind`` (see INPUT_KINDS); |.| of it when ``non_negative`` (NMF)."""
    if kind == 'zeros':
        x = torch.zeros(shape, dtype=dtype)
    elif kind == 'constant':
        x = torch.full(shape, 0.7, dtype=dtype)
    elif kind == 'one_hot':
        x = torch.zeros(shape, dtype=dtype).flatten()
        x[seed % x.numel()] = 2.0
        x = x.reshape(shape)
    else:
        scale = {'random': 1.0, 'tiny': 1e-3, 'huge': 1e3}[kind]
        x = randn(*shape, seed=seed, dtype=dtype, scale=scale)
    return x.abs() if non_negative else x


@dataclass(frozen=True)
class HamCase:
    """One drawn example of a ham."""
    ham_type: str
    md_s: int
    d: int
    md_r: int
    steps: int
    batch: int
    height: int
    width: int
    dtype: torch.dtype
    kind: str
    seed: int

    @property
    def channels(self) -> int:
        return self.md_s * self.d

    def build(self, **kwargs) -> nn.Module:
        return HAMS[self.ham_type](self.channels, MD_S=self.md_s, MD_R=self.md_r,
                                   train_steps=self.steps, eval_steps=self.steps, **kwargs)

    def input(self) -> torch.Tensor:
        return make_input(self.kind, (self.batch, self.channels, self.height, self.width),
                          self.dtype, self.seed, non_negative=self.ham_type == 'NMF')


@st.composite
def ham_cases(draw: st.DrawFn, ham_type: str) -> HamCase:
    return HamCase(ham_type=ham_type, md_s=draw(st.integers(1, 3)), d=draw(st.integers(1, 6)),
                   md_r=draw(st.integers(1, 8)), steps=draw(st.integers(1, 3)),
                   batch=draw(batches), height=draw(sides), width=draw(sides),
                   dtype=draw(st.sampled_from(DTYPES)),
                   kind=draw(st.sampled_from(INPUT_KINDS)), seed=draw(seeds))


def check_output(out: torch.Tensor, x: torch.Tensor, what: str) -> None:
    assert out.shape == x.shape and out.dtype == x.dtype, (what, out.shape, out.dtype)
    assert torch.isfinite(out).all(), what


@pytest.mark.parametrize('ham_type', list(HAMS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_ham_eval_shape_finite_deterministic(ham_type: str, data: st.DataObject) -> None:
    case = data.draw(ham_cases(ham_type), label='case')
    x = case.input()
    ham = case.build().eval()
    torch.manual_seed(case.seed)
    first = ham(x)
    torch.manual_seed(case.seed + 1)  # the global RNG state plays no part in eval
    second = ham(x)
    check_output(first, x, 'eval')
    assert torch.equal(first, second)
    singles = torch.cat([ham(x[i:i + 1]) for i in range(case.batch)])
    assert_close_scaled(singles, first, tolerance(case.dtype), 'images one by one vs batched')
    bptt = case.build(grad='bptt').eval()(x)
    assert torch.equal(bptt, first)


@pytest.mark.parametrize('ham_type', list(HAMS))
@PROPERTY_SETTINGS
@given(data=st.data(), grad=st.sampled_from(('one_step', 'bptt')))
def test_ham_train_shape_finite_with_finite_gradient(ham_type: str, data: st.DataObject,
                                                     grad: str) -> None:
    case = data.draw(ham_cases(ham_type), label='case')
    x = case.input().requires_grad_()
    torch.manual_seed(case.seed)
    out = case.build(grad=grad).train()(x)
    check_output(out, x, 'train')
    upstream = randn(*x.shape, seed=case.seed + 1, dtype=case.dtype)
    (grad_x,) = torch.autograd.grad((out * upstream).sum(), x)
    assert torch.isfinite(grad_x).all()


@pytest.mark.parametrize('ham_type', list(HAMS))
@PROPERTY_SETTINGS
@given(data=st.data())
def test_ham_fixed_bases_online_update(ham_type: str, data: st.DataObject) -> None:
    case = data.draw(ham_cases(ham_type), label='case')
    x = case.input()
    torch.manual_seed(case.seed)
    ham = case.build(rand_init=False).train()
    check_output(ham(x), x, 'train, rand_init=False')
    bases = ham.bases
    assert bases.shape == (case.md_s, case.d, case.md_r) and torch.isfinite(bases).all()
    norms = bases.norm(dim=1)  # each atom is unit, or zero when the data gave it nothing
    assert ((norms - 1).abs() < 1e-4).logical_or(norms < 1e-4).all(), norms
    ham.eval()
    first = ham(x)
    check_output(first, x, 'eval, rand_init=False')
    assert torch.equal(ham(x), first)


@st.composite
def hamburger_cases(draw: st.DrawFn) -> dict:
    md_s = draw(st.integers(1, 2))
    return dict(in_channels=draw(st.integers(1, 8)),
                ham_channels=md_s * draw(st.integers(1, 4)),
                ham_type=draw(st.sampled_from(list(HAMS))),
                ham_kwargs=dict(MD_S=md_s, MD_R=draw(st.integers(1, 4)),
                                train_steps=draw(st.integers(1, 3)),
                                eval_steps=draw(st.integers(1, 3)),
                                eval_seed=draw(st.integers(0, 3))),
                norm_cfg=draw(st.sampled_from([None, BN])),
                trailing_relu=draw(st.booleans()))


@PROPERTY_SETTINGS
@given(cfg=hamburger_cases(), b=batches, h=sides, w=sides, dtype=st.sampled_from(DTYPES),
       kind=st.sampled_from(INPUT_KINDS), seed=seeds)
def test_hamburger_shape_finite_deterministic(cfg: dict, b: int, h: int, w: int,
                                              dtype: torch.dtype, kind: str,
                                              seed: int) -> None:
    block = randomize_parameters(Hamburger(**cfg), seed).to(dtype).eval()
    x = make_input(kind, (b, cfg['in_channels'], h, w), dtype, seed, non_negative=False)
    torch.manual_seed(seed)
    first = block(x)
    torch.manual_seed(seed + 1)
    check_output(first, x, 'eval')
    assert torch.equal(block(x), first)
    if cfg['trailing_relu']:
        assert (first >= 0).all()
    singles = torch.cat([block(x[i:i + 1]) for i in range(b)])
    assert_close_scaled(singles, first, tolerance(dtype), 'images one by one vs batched')
    if cfg['norm_cfg'] is None:  # (BN in training needs more than one value per channel)
        block.train()
        check_output(block(x), x, 'train')


@pytest.mark.parametrize('ham_type', list(HAMS))
@PROPERTY_SETTINGS
@given(data=st.data(), bases_init=st.sampled_from(('fixed', 'learned')))
def test_ham_fixed_and_learned_bases(ham_type: str, data: st.DataObject,
                                     bases_init: str) -> None:
    """Table 8's fixed and learned inits: finite outputs and gradients (into the learned
    bases too), deterministic in train and eval, and the stored bases never move by
    themselves."""
    case = data.draw(ham_cases(ham_type), label='case')
    x = case.input().requires_grad_()
    ham = case.build(bases_init=bases_init, grad='bptt').train()
    start = ham.bases.detach().clone()
    out = ham(x)
    check_output(out, x, f'train, bases_init={bases_init!r}')
    assert torch.equal(ham(x), out)
    upstream = randn(*x.shape, seed=case.seed + 1, dtype=case.dtype)
    (out * upstream).sum().backward()
    assert torch.isfinite(x.grad).all()
    if bases_init == 'learned':
        assert ham.bases.grad is not None and torch.isfinite(ham.bases.grad).all()
    assert torch.equal(ham.bases.detach(), start)
    ham.eval()
    first = ham(x)
    check_output(first, x, f'eval, bases_init={bases_init!r}')
    assert torch.equal(ham(x), first)


@PROPERTY_SETTINGS
@given(cfg=hamburger_cases(), lower=st.booleans(), upper=st.booleans(), b=batches, h=sides,
       w=sides, dtype=st.sampled_from(DTYPES), seed=seeds)
def test_hamburger_bread_ablations(cfg: dict, lower: bool, upper: bool, b: int, h: int, w: int,
                                   dtype: torch.dtype, seed: int) -> None:
    """Without either bread (ham_channels = in_channels): shape, dtype, finite, deterministic
    in eval; the low-rank path (with the upper bread) equals the materialised one."""
    cfg = dict(cfg, in_channels=cfg['ham_channels'])
    block = randomize_parameters(Hamburger(lower_bread=lower, upper_bread=upper, **cfg),
                                 seed).to(dtype).eval()
    x = make_input('random', (b, cfg['in_channels'], h, w), dtype, seed, non_negative=False)
    first = block(x)
    check_output(first, x, 'eval')
    assert torch.equal(block(x), first)
    block.impl = 'dense'
    assert_close_scaled(block(x), first, tolerance(dtype), 'dense vs auto')
