"""Hamburger's low-rank upper bread (``impl='auto'``/``'efficient'``): the upper 1x1 conv and its
BatchNorm applied to the ham's factors give the same outputs, gradients and running
statistics as the materialised path (``impl='dense'``), without saving the (d x n)
maps; other norms fall back to the modules; checkpoints are interchangeable."""
from __future__ import annotations

import copy
from typing import Optional

import pytest
import torch
import torch.nn.functional as F

from nlseg.models.blocks import Hamburger
from nlseg.models.blocks.hamburger import _ReLUSavingMask

C, D, R = 6, 8, 3          # block channels, ham channels, atoms
BN = dict(type='BN')


def build(ham_type: str = 'NMF', md_s: int = 1, norm_cfg: Optional[dict] = BN,
          trailing_relu: bool = False, seed: int = 0, dtype: torch.dtype = torch.float64,
          **ham_kwargs) -> tuple[Hamburger, Hamburger]:
    """(low-rank block, materialised copy) with the same random parameters and buffers."""
    block = Hamburger(C, D, ham_type, dict(MD_S=md_s, MD_R=R, train_steps=2, eval_steps=2,
                                           **ham_kwargs),
                      norm_cfg=norm_cfg, trailing_relu=trailing_relu).to(dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # no zero, no identity: every term of the block matters
        for name, t in block.state_dict().items():
            if not t.is_floating_point() or name.startswith('ham.'):
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + 0.5)
            else:
                t.copy_(0.5 * torch.randn(t.shape, generator=g, dtype=t.dtype))
    reference = copy.deepcopy(block)
    reference.impl = 'dense'
    return block, reference


def run(block: Hamburger, x: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, list]:
    """Output and gradients (input, then every parameter) of sum(out * w) for fixed w."""
    x = x.detach().clone().requires_grad_(True)
    torch.manual_seed(seed)  # the training-mode bases come from the global RNG
    out = block(x)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    (out * w).sum().backward()
    return out.detach(), [x.grad] + [p.grad for p in block.parameters()]


def assert_same_state(block: Hamburger, reference: Hamburger, atol: float) -> None:
    ref = reference.state_dict()
    for name, t in block.state_dict().items():
        if t.is_floating_point():
            torch.testing.assert_close(t, ref[name], rtol=0, atol=atol, msg=name)
        else:
            assert torch.equal(t, ref[name]), name


def assert_low_rank_equals_materialised(block: Hamburger, reference: Hamburger,
                                        x: torch.Tensor, atol: float = 1e-10) -> None:
    assert block.low_rank_active and not reference.low_rank_active
    out, grads = run(block, x)
    ref_out, ref_grads = run(reference, x)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=atol)
    assert len(grads) == len(ref_grads)
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert (g is None) == (r is None), i
        if g is not None:
            torch.testing.assert_close(g, r, rtol=0, atol=atol, msg=f'gradient {i}')
    assert_same_state(block, reference, atol)


@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
@pytest.mark.parametrize('trailing_relu', [False, True], ids=['no-relu', 'relu'])
@pytest.mark.parametrize('norm_cfg', [None, BN], ids=['no-norm', 'BN'])
@pytest.mark.parametrize('md_s', [1, 2], ids=['S1', 'S2'])
@pytest.mark.parametrize('batch', [1, 3], ids=['B1', 'B3'])
@pytest.mark.parametrize('ham_type', ['NMF', 'VQ', 'CD'])
def test_low_rank_equals_materialised_float64(ham_type, batch, md_s, norm_cfg,
                                              trailing_relu, train):
    block, reference = build(ham_type, md_s, norm_cfg, trailing_relu)
    block.train(train)
    reference.train(train)
    x = torch.randn(batch, C, 5, 7, dtype=torch.float64)
    assert_low_rank_equals_materialised(block, reference, x)
    if train and norm_cfg is not None:
        norm = block.upper_bread.norm
        assert int(norm.num_batches_tracked) == 1
        assert not torch.equal(norm.running_mean, build(ham_type, md_s)[0].upper_bread.norm
                               .running_mean)  # the step did update the statistics


@pytest.mark.parametrize('ham_type', ['NMF', 'VQ', 'CD'])
def test_bptt_and_online_bases_match(ham_type):
    """Gradients through every iteration (bases depend on X), and the online update of the
    bases buffer (rand_init=False), are the same on both paths."""
    for kwargs in (dict(grad='bptt'), dict(rand_init=False)):
        block, reference = build(ham_type, 2, BN, True, **kwargs)
        x = torch.randn(2, C, 4, 6, dtype=torch.float64)
        assert_low_rank_equals_materialised(block.train(), reference.train(), x)
        assert_low_rank_equals_materialised(block.eval(), reference.eval(), x)


@pytest.mark.parametrize('norm_cfg', [
    dict(type='BN', momentum=None),             # cumulative average, 1 / num_batches_tracked
    dict(type='BN2d', momentum=0.3),
    dict(type='BN', affine=False),
    dict(type='BN', track_running_stats=False),  # batch statistics in eval mode too
    dict(type='BN', requires_grad=False),
], ids=['momentum-None', 'BN2d-momentum', 'no-affine', 'no-running-stats', 'frozen'])
def test_batch_norm_variants_match(norm_cfg):
    block, reference = build('NMF', 2, norm_cfg, False)
    for _ in range(3):  # three training steps, then eval on the updated statistics
        x = torch.randn(2, C, 3, 5, dtype=torch.float64)
        assert_low_rank_equals_materialised(block.train(), reference.train(), x)
    norm = block.upper_bread.norm
    if norm.track_running_stats:
        assert int(norm.num_batches_tracked) == 3
    assert_low_rank_equals_materialised(block.eval(), reference.eval(), x)


def test_float32_agrees_with_materialised_on_a_realistic_size():
    """float32, 512 -> 64 channels of NMF codes (non-negative, large common mean, the case
    where E[u^2] - E[u]^2 cancels): outputs, gradients and running stats agree with the
    materialised path to float32 rounding."""
    torch.manual_seed(0)
    block = Hamburger(32, 64, 'NMF', dict(MD_R=8), norm_cfg=BN, trailing_relu=True)
    reference = copy.deepcopy(block)
    reference.impl = 'dense'
    x = torch.randn(2, 32, 24, 24) + 3.0
    out, grads = run(block.train(), x)
    ref_out, ref_grads = run(reference.train(), x)
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-4)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-5 * float(r.abs().max()))
    assert_same_state(block, reference, atol=1e-5)


def test_bn_on_a_single_value_per_channel_raises_as_bn_does():
    block, reference = build('VQ', 1, BN)
    x = torch.randn(1, C, 1, 1, dtype=torch.float64)
    for module in (block.train(), reference.train()):
        with pytest.raises(ValueError, match='more than 1 value per channel'):
            module(x)
    assert_low_rank_equals_materialised(block.eval(), reference.eval(), x)


@pytest.mark.parametrize('norm_cfg, conv_cfg', [
    (dict(type='GN', num_groups=2), None),
    (dict(type='SyncBN'), None),
    (BN, dict(type='ConvWS')),
], ids=['GN', 'SyncBN', 'ConvWS'])
def test_other_norms_and_convs_fall_back_to_the_modules(norm_cfg, conv_cfg):
    torch.manual_seed(0)
    block = Hamburger(C, D, 'CD', dict(MD_R=R), norm_cfg=norm_cfg, conv_cfg=conv_cfg).eval()
    assert block.impl == 'auto' and not block.low_rank_active
    x = torch.randn(2, C, 4, 5)
    expected = x + block.upper_bread(block.ham(block.lower_bread(x)))
    torch.testing.assert_close(block(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
def test_sync_bn_reverted_by_mmengine_takes_the_low_rank_path(train):
    """A SyncBN config in one process (mmengine's revert_sync_batchnorm: _BatchNormXd)."""
    from mmengine.model import revert_sync_batchnorm
    block, reference = build('NMF', 1, dict(type='SyncBN'))
    block, reference = revert_sync_batchnorm(block), revert_sync_batchnorm(reference)
    assert type(block.upper_bread.norm).__name__ == '_BatchNormXd'
    block.train(train), reference.train(train)
    assert_low_rank_equals_materialised(block, reference, torch.randn(2, C, 4, 5,
                                                                      dtype=torch.float64))


def test_hooks_and_the_switch_turn_the_low_rank_path_off():
    block, _ = build('NMF', 1, BN)
    assert block.low_rank_active
    calls = []
    handle = block.upper_bread.norm.register_forward_hook(lambda *args: calls.append(1))
    assert not block.low_rank_active      # a hook on a skipped module must still run
    block(torch.randn(2, C, 3, 3, dtype=torch.float64))
    assert calls == [1]
    handle.remove()
    assert block.low_rank_active
    block.impl = 'dense'
    assert not block.low_rank_active


@pytest.mark.parametrize('low_rank', [True, False])
def test_upper_conv_runs_only_on_the_materialised_path(monkeypatch, low_rank):
    block, _ = build('NMF', 2, BN)
    block.impl = 'efficient' if low_rank else 'dense'
    calls = []
    conv = block.upper_bread.conv
    original = conv.forward
    monkeypatch.setattr(conv, 'forward', lambda t: calls.append(t.shape) or original(t))
    block.train()(torch.randn(2, C, 3, 4, dtype=torch.float64))
    assert calls == ([] if low_rank else [(2, D, 3, 4)])


def saved_bytes(block: Hamburger, x: torch.Tensor, min_bytes: int) -> int:
    """Bytes of the distinct storages of at least ``min_bytes`` that autograd saves in one
    training forward."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        nbytes = t.untyped_storage().nbytes()
        if nbytes >= min_bytes:
            storages[t.untyped_storage().data_ptr()] = nbytes
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block(x)
    return sum(storages.values())


@pytest.mark.parametrize('ham_type', ['NMF', 'CD'])
def test_low_rank_path_saves_no_feature_maps_but_the_output(ham_type):
    """Materialised: the input, the reconstruction, the conv output (BN's input), the block
    output and, for NMF, the lower bread's ReLU output: four or five (C x n) maps. Low-rank:
    the input (saved by the lower conv) and the output only; the codes are n x r and NMF's
    ReLU keeps a bool mask."""
    c = d = 16
    block = Hamburger(c, d, ham_type, dict(MD_R=2), norm_cfg=BN, trailing_relu=True).train()
    reference = copy.deepcopy(block)
    reference.impl = 'dense'
    x = torch.randn(1, c, 16, 16)
    map_bytes = x.numel() * x.element_size()
    assert saved_bytes(reference, x, map_bytes) == (5 if ham_type == 'NMF' else 4) * map_bytes
    assert saved_bytes(block, x, map_bytes // 2) == 2 * map_bytes  # (the mask: map / 4)


def test_state_dict_is_unchanged_and_checkpoints_load_both_ways():
    block, reference = build('VQ', 2, BN)
    assert list(block.state_dict()) == list(Hamburger(
        C, D, 'VQ', dict(MD_S=2, MD_R=R), norm_cfg=BN, impl='dense').state_dict())
    fresh = Hamburger(C, D, 'VQ', dict(MD_S=2, MD_R=R, train_steps=2, eval_steps=2),
                      norm_cfg=BN).double().eval()
    fresh.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, C, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(fresh(x), reference.eval()(x), rtol=0, atol=1e-12)


def test_bad_switch_value():
    with pytest.raises(TypeError, match='low_rank_upper must be True or False'):
        Hamburger(C, D, low_rank_upper='auto')


@pytest.mark.parametrize('x_dtype', [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize('amp_dtype', [torch.bfloat16, torch.float16])
def test_autocast_gives_the_materialised_dtype(amp_dtype, x_dtype):
    """Under CPU autocast the factor products run in float32; the output has the dtype of the
    materialised path (x's dtype promoted with the autocast dtype of the upper conv) and
    values within the materialised path's low-precision error."""
    block, reference = build('NMF', 1, BN, True, dtype=torch.float32)
    if x_dtype == torch.float64:
        block, reference = block.double(), reference.double()
    x = torch.randn(2, C, 6, 6, dtype=x_dtype)
    outs = []
    for module in (block.train(), reference.train()):
        torch.manual_seed(3)
        xi = x.clone().requires_grad_(True)
        with torch.autocast('cpu', dtype=amp_dtype):
            out = module(xi)
        out.float().square().mean().backward()
        assert torch.isfinite(xi.grad).all()
        outs.append(out)
    assert outs[0].dtype == outs[1].dtype
    tol = 1e-10 if x_dtype == torch.float64 else 0.1
    torch.testing.assert_close(outs[0].double(), outs[1].double(), rtol=tol, atol=tol)


def test_relu_saving_mask_matches_relu():
    x = torch.tensor([-2.0, -0.0, 0.0, 1e-30, 3.0, float('nan')], dtype=torch.float64)
    grad = torch.tensor([1.0, float('inf'), 2.0, 3.0, 4.0, 5.0], dtype=torch.float64)
    results = []
    for fn in (lambda t: F.relu(t, inplace=True), _ReLUSavingMask.apply):
        leaf = x.clone().requires_grad_(True)
        out = fn(leaf * 1)  # in place on a non-leaf
        out.backward(grad)
        results.append((out.detach(), leaf.grad))
    torch.testing.assert_close(results[0][0], results[1][0], equal_nan=True, rtol=0, atol=0)
    torch.testing.assert_close(results[0][1], results[1][1], equal_nan=True, rtol=0, atol=0)
    assert results[1][1].tolist()[:5] == [0.0, 0.0, 0.0, 3.0, 4.0]


@pytest.mark.parametrize('ham_type', ['NMF', 'VQ', 'CD'])
def test_ham_factorize_gives_the_factors_of_forward(ham_type):
    from nlseg.models.blocks.hams import HAMS
    from nlseg.ops.matrix_decomposition import reconstruct
    ham = HAMS[ham_type](8, MD_S=2, MD_R=3).train()
    x = torch.rand(3, 8, 4, 5)
    torch.manual_seed(0)
    bases, coef = ham.factorize(x)
    torch.manual_seed(0)
    out = ham(x)
    assert bases.shape == (6, 4, 3) and coef.shape == (6, 20, 3)
    assert bases.dtype == coef.dtype == torch.float32
    assert torch.equal(reconstruct(bases, coef).reshape(x.shape), out)
