"""Hamburger variants of issue 12 and the vocabulary of issue 14: the four bases
initialisations of Table 8 (``bases_init``), the bread ablations of Table 2
(``lower_bread`` / ``upper_bread``), ``impl`` for the low-rank upper bread (and its deprecated
alias ``low_rank_upper``), and warnings for arguments a configuration does not use."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from nlseg.models import CD2D, NMF2D, VQ2D, Hamburger, HamburgerHead

HAMS = {'NMF': NMF2D, 'VQ': VQ2D, 'CD': CD2D}
BN = dict(type='BN')


def relu_input(b=2, c=8, h=4, w=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, h, w, generator=g, dtype=dtype).relu()


def no_warnings(build):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        return build()


# ---- bases_init (Table 8) --------------------------------------------------------------------
@pytest.mark.parametrize('ham_type', list(HAMS))
def test_rand_init_is_random_or_online(ham_type):
    cls = HAMS[ham_type]
    assert no_warnings(lambda: cls(8, MD_R=3)).bases_init == 'random'
    ham = no_warnings(lambda: cls(8, MD_R=3, rand_init=False))
    assert ham.bases_init == 'online' and not ham.rand_init
    assert isinstance(ham.bases, torch.Tensor) and 'bases' in dict(ham.named_buffers())
    with pytest.raises(ValueError, match=r"rand_init=False contradicts bases_init='random'"):
        cls(8, MD_R=3, rand_init=False, bases_init='random')


@pytest.mark.parametrize('ham_type', list(HAMS))
def test_fixed_bases_are_a_buffer_never_updated(ham_type):
    ham = HAMS[ham_type](8, MD_S=2, MD_R=3, bases_init='fixed').train()
    before = ham.bases.clone()
    ham(relu_input())
    torch.testing.assert_close(ham.bases, before, rtol=0, atol=0)
    online = HAMS[ham_type](8, MD_S=2, MD_R=3, bases_init='online').train()
    start = online.bases.clone()
    online(relu_input())
    assert not torch.allclose(online.bases, start)  # the warm start moves the buffer
    with pytest.raises(RuntimeError, match="online_update needs bases_init='online'"):
        ham.online_update(before)
    # a fixed init is deterministic: two eval calls, two training calls, same output
    x = relu_input(seed=3)
    torch.testing.assert_close(ham(x), ham(x), rtol=0, atol=0)


@pytest.mark.parametrize('ham_type', list(HAMS))
def test_learned_bases_are_a_parameter_trained_by_bptt(ham_type):
    torch.manual_seed(0)
    # inv_t = 1: at VQ/CD's default temperature 0.01 the first codes are nearly one-hot and
    # the initial bases get a gradient of ~1e-11 (what makes the learned init the worst)
    ham = HAMS[ham_type](8, MD_S=2, MD_R=3, bases_init='learned', grad='bptt',
                         train_steps=2, inv_t=1).train()
    params = dict(ham.named_parameters())
    assert list(params) == ['bases'] and params['bases'].shape == (2, 4, 3)
    assert 'bases' in ham.state_dict()
    x = relu_input()
    out = ham(x)
    out.square().sum().backward()
    grad = ham.bases.grad
    assert grad is not None and grad.abs().sum() > 0 and torch.isfinite(grad).all()
    # a step of SGD on the parameter changes the (deterministic) output
    before = ham(x).detach()
    torch.testing.assert_close(ham(x).detach(), before, rtol=0, atol=0)
    with torch.no_grad():
        ham.bases -= 0.1 * grad / grad.norm()
    assert not torch.allclose(ham(x).detach(), before)


def test_learned_nmf_bases_stay_non_negative_unit_atoms():
    ham = NMF2D(8, MD_R=3, bases_init='learned', grad='bptt')
    with torch.no_grad():
        ham.bases.mul_(-3.0)  # a parameter that went negative
    initial = ham._initial_bases(2, 8, relu_input())
    assert (initial >= 0).all()
    torch.testing.assert_close(initial.norm(dim=1), torch.ones(2, 3))
    assert torch.isfinite(ham(relu_input())).all()


def test_learned_init_needs_bptt_and_channels():
    with pytest.raises(ValueError, match=r"bases_init='learned' needs grad='bptt'.*no gradient"):
        NMF2D(8, bases_init='learned')
    with pytest.raises(ValueError, match=r"bases_init='learned' \(rand_init=False\) needs "
                                         r"`channels`"):
        VQ2D(None, bases_init='learned', grad='bptt')
    with pytest.raises(ValueError, match=r"bases_init must be one of \('random', 'online', "
                                         r"'fixed', 'learned'\), got 'warm'"):
        CD2D(8, bases_init='warm')


def test_learned_checkpoint_round_trip():
    a = CD2D(8, MD_R=3, bases_init='learned', grad='bptt').eval()
    b = CD2D(8, MD_R=3, bases_init='learned', grad='bptt').eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 8, 3, 4)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


# ---- unused arguments warn -------------------------------------------------------------------
@pytest.mark.parametrize('kwargs, match', [
    (dict(eta=0.5), r"eta=0\.5 has no effect with bases_init='random'"),
    (dict(eta=0.5, bases_init='fixed'), r"eta=0\.5 has no effect with bases_init='fixed'"),
    (dict(eval_seed=3, rand_init=False), r"eval_seed=3 has no effect with bases_init='online'"),
])
def test_unused_ham_arguments_warn(kwargs, match):
    with pytest.warns(UserWarning, match=match):
        VQ2D(8, **kwargs)


def test_nmf_inv_t_warns_and_used_arguments_do_not():
    with pytest.warns(UserWarning, match=r'NMF2D: inv_t=100 has no effect'):
        NMF2D(8, inv_t=100)
    no_warnings(lambda: NMF2D(8, inv_t=1, rand_init=True))
    no_warnings(lambda: NMF2D(8, eta=0.5, rand_init=False))
    no_warnings(lambda: VQ2D(8, inv_t=10, eval_seed=4))


# ---- bread ablations (Table 2) ---------------------------------------------------------------
def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_table2_parameter_counts():
    """Table 2 (d = C = 512, r = 64): basic +0.50M, without either bread +0.25M, only ham
    +0M (the norm's 1024 affine parameters aside)."""
    kw = dict(ham_kwargs=dict(MD_R=64), norm_cfg=BN)
    basic = n_params(Hamburger(512, 512, **kw))
    no_upper = n_params(Hamburger(512, 512, upper_bread=False, **kw))
    no_lower = n_params(Hamburger(512, 512, lower_bread=False, **kw))
    only_ham = n_params(Hamburger(512, 512, lower_bread=False, upper_bread=False,
                                  ham_kwargs=dict(MD_R=64)))
    assert abs(basic - 0.50e6) <= 0.06e6
    assert abs(no_upper - 0.25e6) <= 0.03e6 and abs(no_lower - 0.25e6) <= 0.03e6
    assert only_ham == 0


@pytest.mark.parametrize('ham_type', list(HAMS))
def test_without_lower_bread(ham_type):
    block = Hamburger(8, 8, ham_type, dict(MD_R=3), norm_cfg=BN, lower_bread=False).eval()
    assert block.lower_bread is None
    x = torch.randn(2, 8, 4, 5)
    ham_in = F.relu(x) if ham_type == 'NMF' else x  # NMF keeps the ReLU (non-negative input)
    expected = x + block.upper_bread(block.ham(ham_in))
    block.impl = 'dense'
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
    block.impl = 'efficient'
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(x, x.clone())  # the residual input is not modified in place


@pytest.mark.parametrize('ham_type', list(HAMS))
def test_without_upper_bread(ham_type):
    block = Hamburger(8, 8, ham_type, dict(MD_R=3), norm_cfg=BN, upper_bread=False).eval()
    assert block.upper_bread is None and isinstance(block.norm, nn.BatchNorm2d)
    assert not block.low_rank_active
    x = torch.randn(2, 8, 4, 5)
    expected = x + block.norm(block.ham(block.lower_bread(x)))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)
    only = Hamburger(8, 8, ham_type, dict(MD_R=3), lower_bread=False, upper_bread=False,
                     trailing_relu=True).eval()
    assert only.norm is None
    ham_in = F.relu(x) if ham_type == 'NMF' else x
    torch.testing.assert_close(only(x), F.relu(x + only.ham(ham_in)), rtol=0, atol=0)


def test_conv_cfg_without_breads_warns():
    with pytest.warns(UserWarning, match=r'conv_cfg=.* has no effect without both breads'):
        Hamburger(8, 8, conv_cfg=dict(type='Conv2d'), lower_bread=False, upper_bread=False)


def test_bread_ablations_train_and_backpropagate():
    for kw in (dict(lower_bread=False), dict(upper_bread=False)):
        block = Hamburger(8, 8, 'NMF', dict(MD_R=3), norm_cfg=BN, **kw).train()
        x = torch.randn(2, 8, 4, 5, requires_grad=True)
        block(x).square().sum().backward()
        assert x.grad.abs().sum() > 0
        assert all(p.grad is not None for p in block.parameters())


def test_low_rank_without_lower_bread_equals_dense_float64():
    torch.manual_seed(0)
    block = Hamburger(6, 6, 'CD', dict(MD_S=2, MD_R=3, grad='bptt'), norm_cfg=BN,
                      lower_bread=False).double().train()
    reference = copy.deepcopy(block)
    reference.impl = 'dense'
    assert block.low_rank_active and not reference.low_rank_active
    x = torch.randn(2, 6, 4, 5, dtype=torch.float64)
    outs, grads = [], []
    for module in (block, reference):
        xg = x.clone().requires_grad_()
        torch.manual_seed(1)
        out = module(xg)
        (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view(out.shape)).sum() \
            .backward()
        outs.append(out.detach())
        grads.append([xg.grad] + [p.grad for p in module.parameters()])
    torch.testing.assert_close(outs[0], outs[1], rtol=0, atol=1e-10)
    for g, r in zip(*grads):
        torch.testing.assert_close(g, r, rtol=0, atol=1e-10)
    torch.testing.assert_close(block.upper_bread.norm.running_var,
                               reference.upper_bread.norm.running_var, rtol=0, atol=1e-12)


@pytest.mark.parametrize('kwargs, match', [
    (dict(lower_bread=False), r'lower_bread=False needs ham_channels == in_channels .*'
                              r'ham_channels=16, in_channels=8'),
    (dict(upper_bread=False), r'upper_bread=False needs ham_channels == in_channels'),
    (dict(lower_bread='no'), r"lower_bread must be True or False, got 'no'"),
])
def test_bread_channel_constraints(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Hamburger(8, 16, **kwargs)


# ---- impl --------------------------------------------------------------------------------------
def test_impl_efficient_raises_where_it_cannot_apply():
    with pytest.raises(ValueError, match=r"impl='efficient' .* needs upper_bread=True"):
        Hamburger(8, 8, upper_bread=False, impl='efficient')
    with pytest.raises(ValueError, match=r"impl='efficient' cannot apply here: its norm is "
                                         r"GroupNorm"):
        Hamburger(8, 8, norm_cfg=dict(type='GN', num_groups=2), impl='efficient')
    with pytest.raises(ValueError, match=r"impl='efficient' cannot apply here: the upper bread "
                                         r"is not a plain 1x1 nn.Conv2d"):
        Hamburger(8, 8, conv_cfg=dict(type='ConvWS'), impl='efficient')
    with pytest.raises(ValueError, match=r"impl must be one of \('auto', 'dense', 'efficient'\)"):
        Hamburger(8, 8, impl='lowrank')
    block = Hamburger(8, 8, ham_kwargs=dict(MD_R=3), norm_cfg=BN, impl='efficient')
    block.upper_bread.register_forward_hook(lambda *a: None)
    with pytest.raises(RuntimeError, match=r"impl='efficient'.*forward hooks"):
        block(relu_input())
    # a SyncBN is accepted at construction (mmengine reverts it to BN in one process)
    Hamburger(8, 8, norm_cfg=dict(type='SyncBN'), impl='efficient')


@pytest.mark.parametrize('value, impl', [(True, 'auto'), (False, 'dense')])
def test_low_rank_upper_is_a_deprecated_alias(value, impl):
    with pytest.warns(DeprecationWarning, match=rf"low_rank_upper={value} is deprecated, use "
                                                rf"impl='{impl}'"):
        block = Hamburger(8, 8, low_rank_upper=value)
    assert block.impl == impl and block.low_rank_upper is value
    with pytest.warns(DeprecationWarning, match='low_rank_upper is deprecated'):
        block.low_rank_upper = not value
    assert block.impl == ('auto' if not value else 'dense')
    with pytest.raises(ValueError, match=r'contradicts impl='):
        Hamburger(8, 8, low_rank_upper=value, impl='efficient' if not value else 'dense')


def test_head_passes_impl_and_breads():
    head = HamburgerHead(in_channels=8, channels=4, num_classes=3, ham_channels=8,
                         ham_kwargs=dict(MD_R=3), impl='dense', lower_bread=False,
                         norm_cfg=BN)
    assert head.hamburger.impl == 'dense' and head.hamburger.lower_bread is None
    with pytest.warns(DeprecationWarning, match='low_rank_upper=False is deprecated'):
        head = HamburgerHead(in_channels=8, channels=4, num_classes=3, ham_channels=8,
                             ham_kwargs=dict(MD_R=3), low_rank_upper=False)
    assert head.hamburger.impl == 'dense'
    out = head([torch.randn(2, 8, 5, 5)])
    assert out.shape == (2, 3, 5, 5)
    # the head's Hamburger maps ham_channels to ham_channels: every ablation fits
    head = HamburgerHead(in_channels=8, channels=4, num_classes=3, ham_channels=16,
                         ham_kwargs=dict(MD_R=3), lower_bread=False, upper_bread=False)
    assert head([torch.randn(2, 8, 5, 5)]).shape == (2, 3, 5, 5)


def test_learned_init_through_the_head_trains():
    head = HamburgerHead(in_channels=8, channels=4, num_classes=3, ham_channels=8,
                         ham_kwargs=dict(MD_R=3, bases_init='learned', grad='bptt'),
                         norm_cfg=BN).train()
    head([torch.randn(2, 8, 5, 5)]).square().sum().backward()
    assert head.hamburger.ham.bases.grad.abs().sum() > 0
