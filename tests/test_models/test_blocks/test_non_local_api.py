"""The shared interface of the NL-family blocks (NonLocalBase): the exposed dense affinity,
impl='auto' resolved per forward from the measured table, mmcv NonLocal2d drop-in
(zeros_init, std, inter channels floored to 1), ARNLB's use_scale / gaussian semantics (an
mmcv-derived reference like the authors' NewNonLocal2d) and ARNLHead's deprecated temperature.
"""
import warnings

import pytest
import torch
from mmcv.cnn import NonLocal2d

import nlseg.ops.impl_choice as impl_choice
from nlseg.models import AdaptiveNonLocalBlock, ARNLHead, NonLocalBase, NonLocalBlock, \
    NonLocalStage, SpectralNonLocalBlock
from nlseg.ops.impl_choice import CrossoverRow, choose_impl
from tests.references.arnlb import AuthorsStyleARNL
from tests.test_models.test_blocks.test_non_local_blocks import BLOCKS, C, build, randomize, x_input

BN = dict(type='BN')


def apply_dense_affinity(block, x, a):
    """The block's output recomputed from its dense affinity ``a`` with its own submodules."""
    if isinstance(block, SpectralNonLocalBlock):
        z = block.g(x)
        az = torch.matmul(a, z.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(z.shape)
        out = block.w1(z) + block.w2(az)
        if block.generalized:
            out = out + block.w3(2 * az - z)
        return x + block.norm(out)
    if isinstance(block, NonLocalStage):
        z = x
        for unit in block.units:
            g = unit.g(z)
            ag = torch.matmul(a, g.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(g.shape)
            z = z + unit.conv_out(ag - g)
        return z
    g = block.g(x)  # (B, C', kh, kw): sub-sampled values when sub_sample
    y = torch.matmul(a, g.flatten(2).transpose(1, 2))
    return x + block.conv_out(y.transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:]))


# ------------------------------------------------------------------------ dense_affinity
@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('name', list(BLOCKS))
def test_dense_affinity_is_what_the_block_applies(name, impl):
    block = build(name, impl).double()
    x = x_input(h=5, w=4, dtype=torch.float64).detach()
    with torch.no_grad():
        a = block.dense_affinity(x)
        kh, kw = block.key_grid(x)
        assert a.shape == (2, 20, kh * kw) and a.dtype == torch.float64
        out = block(x)
        assert not torch.allclose(out, x)
        torch.testing.assert_close(apply_dense_affinity(block, x, a), out, rtol=1e-10,
                                   atol=1e-10)
    if name.startswith(('nl_gaussian', 'nl_embedded', 'arnl', 'ns')):  # row-stochastic
        torch.testing.assert_close(a.sum(-1), torch.ones(2, 20, dtype=torch.float64))


@pytest.mark.parametrize('name', list(BLOCKS))
def test_dense_affinity_query_rows(name):
    block = build(name, 'auto')
    x = x_input(h=6, w=5).detach()
    with torch.no_grad():
        full = block.dense_affinity(x)
        idx = [0, 7, 29, -1]
        rows = block.dense_affinity(x, queries=idx)
        torch.testing.assert_close(rows, full[:, idx], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(block.dense_affinity(x, torch.tensor(idx)), rows)
    with pytest.raises(ValueError, match=r'queries must be flat positions in \[-30, 30\)'):
        block.dense_affinity(x, queries=[30])
    with pytest.raises(ValueError, match='queries must be a 1-D sequence of integer'):
        block.dense_affinity(x, queries=torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='in_channels=8 but received an input with 3'):
        block.dense_affinity(torch.randn(1, 3, 4, 4))


def test_key_grid_with_sub_sample():
    block = NonLocalBlock(C, sub_sample=True)
    assert block.key_grid(torch.zeros(1, C, 7, 5)) == (3, 2)
    assert block.key_grid(torch.zeros(1, C, 1, 5)) == (1, 5)  # KeyPool2d leaves it
    assert block.dense_affinity(torch.randn(1, C, 7, 5)).shape == (1, 35, 6)


def test_every_block_is_a_non_local_base():
    for cls, _ in BLOCKS.values():
        assert issubclass(cls, NonLocalBase)
    assert not list(NonLocalBase(C).parameters())  # the base owns no parameters
    with pytest.raises(NotImplementedError):
        NonLocalBase(C).dense_affinity(torch.randn(1, C, 2, 2))


# ------------------------------------------------------------------------ impl='auto'
def _table(forward: float, train: float = None, kernels=impl_choice.KERNELS):
    """Crossover rows with N* = ``forward`` (inference) and ``train`` (default: the same) at
    C' = 4 and 64 for ``kernels``, on the CPU at this process's thread count."""
    train = forward if train is None else train
    return [CrossoverRow('cpu', torch.get_num_threads(), k,
                         {'forward': {4: forward, 64: forward}, 'train': {4: train, 64: train}})
            for k in kernels]


@pytest.mark.parametrize('name', list(BLOCKS))
def test_auto_follows_the_measured_table(name, monkeypatch):
    """With N* = 17 (dense iff N * M <= 289): a 4x4 map (N * M <= 256, with or without the
    sub-sampled keys) runs the dense path, an 8x8 map (N * M >= 1024) the efficient one,
    each bit for bit, and 'auto' agrees with the other path to rounding."""
    monkeypatch.setattr(impl_choice, '_PARSED', _table(17))
    auto, dense, efficient = (build(name, impl) for impl in ('auto', 'dense', 'efficient'))
    for (h, w), picked, other in (((4, 4), dense, efficient), ((8, 8), efficient, dense)):
        x = x_input(h=h, w=w).detach()
        with torch.no_grad():
            out = auto(x)
            assert torch.equal(out, picked(x)), (h, w)
            torch.testing.assert_close(out, other(x), rtol=1e-5, atol=1e-5)


def test_auto_uses_the_training_row_when_autograd_records(monkeypatch):
    monkeypatch.setattr(impl_choice, '_PARSED', _table(100, 2, kernels=['softmax']))
    block = NonLocalBlock(C)
    x = torch.randn(1, C, 4, 4)
    assert block.impl_for(16, 16, 4, x) == 'efficient'  # parameters require grad: train row
    with torch.no_grad():
        assert block.impl_for(16, 16, 4, x) == 'dense'
    block.requires_grad_(False)
    assert block.impl_for(16, 16, 4, x) == 'dense'
    assert block.impl_for(16, 16, 4, x.requires_grad_()) == 'efficient'


def test_auto_with_the_shipped_table_is_choose_impl():
    block = NonLocalBlock(C)
    x = torch.randn(1, C, 4, 4)
    for n in (4, 64, 1024, 8192):
        with torch.no_grad():
            assert block.impl_for(n, n, 4, x) == choose_impl('softmax', n, n, 4, 'cpu', False)
        assert block.impl_for(n, n, 4, x) == choose_impl('softmax', n, n, 4, 'cpu', True)
    # the memory cap: one 8192 x 8192 float32 affinity (256 MiB) is never formed by 'auto'
    assert block.impl_for(8192, 8192, 4, x) == 'efficient'
    assert NonLocalBlock(C, impl='dense').impl_for(8192, 8192, 4, x) == 'dense'


@pytest.mark.parametrize('name', ['nl_embedded_gaussian', 'nl_concatenation_sub',
                                  'arnl_gaussian', 'ns_embedded_gaussian', 'gsnl_symmetric'])
def test_auto_resolution_does_not_break_the_compiled_graph(name):
    """Resolving 'auto' reads the thread count as a compile-time constant: dynamo traces the
    whole block (torch.get_num_threads() in the traced code would be a graph break)."""
    block = build(name, 'auto')
    torch._dynamo.reset()
    try:
        explained = torch._dynamo.explain(block)(x_input(b=1, h=4, w=5).detach())
    finally:
        torch._dynamo.reset()
    assert explained.graph_break_count == 0, explained.break_reasons


# ------------------------------------------------------------------ NonLocal2d drop-in
NONLOCAL2D_CALLS = [
    dict(), dict(reduction=4), dict(use_scale=False), dict(sub_sample=True),
    dict(mode='gaussian'), dict(mode='gaussian', sub_sample=True), dict(mode='dot_product'),
    dict(mode='concatenation', sub_sample=True), dict(norm_cfg=BN),
    dict(conv_cfg=dict(type='Conv2d')), dict(zeros_init=True), dict(zeros_init=False),
    dict(zeros_init=False, norm_cfg=BN, std=0.05), dict(std=0.02), dict(reduction=16),
    dict(in_channels=1), dict(in_channels=3, reduction=4, mode='embedded_gaussian'),
]


@pytest.mark.parametrize('kwargs', NONLOCAL2D_CALLS, ids=[str(k) for k in NONLOCAL2D_CALLS])
def test_every_nonlocal2d_call_is_accepted_with_its_state_dict_and_output(kwargs):
    kwargs = dict(kwargs)
    c = kwargs.pop('in_channels', C)
    torch.manual_seed(0)
    ref = NonLocal2d(c, **kwargs)
    torch.manual_seed(0)
    ours = NonLocalBlock(c, **kwargs)
    assert ours.inter_channels == ref.inter_channels == max(c // kwargs.get('reduction', 2), 1)
    ref_sd, our_sd = ref.state_dict(), ours.state_dict()
    assert list(our_sd) == list(ref_sd)
    for key in ref_sd:  # same init, draw for draw
        assert torch.equal(our_sd[key], ref_sd[key]), key
    randomize(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ref.eval(), ours.eval()
    x = torch.randn(2, c, 6, 5, dtype=torch.float64)
    ref.double(), ours.double()
    for impl in ('dense', 'efficient', 'auto'):
        ours.impl = impl
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)


def test_zeros_init_false_is_mmcv_normal_init_and_reinit_keeps_it():
    block = NonLocalBlock(C, norm_cfg=BN, zeros_init=False, std=0.05)
    assert 0.01 < block.conv_out.norm.weight.std() < 0.1
    block.conv_out.norm.weight.data.zero_()
    block.init_weights()  # mmengine's init flow calls it without arguments
    assert block.conv_out.norm.weight.abs().sum() > 0
    assert NonLocalBlock(C, zeros_init=True).conv_out.conv.weight.abs().sum() == 0
    with pytest.raises(ValueError, match='zeros_init=True .* contradicts zero_init_output=False'):
        NonLocalBlock(C, zeros_init=True, zero_init_output=False)
    with pytest.raises(TypeError, match='zeros_init must be True or False'):
        NonLocalBlock(C, zeros_init='no')
    with pytest.raises(ValueError, match='std must be >= 0'):
        NonLocalBlock(C, std=-1.0)


@pytest.mark.parametrize('cls', [NonLocalBlock, AdaptiveNonLocalBlock, NonLocalStage,
                                 SpectralNonLocalBlock])
def test_inter_channels_floored_to_one_like_mmcv(cls):
    block = cls(C, reduction=16)
    assert block.inter_channels == 1
    x = torch.randn(1, C, 3, 3)
    assert block(x).shape == x.shape


# ------------------------------------------------------------------ ARNLB semantics
@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('mode,use_scale', [('embedded_gaussian', False),
                                            ('embedded_gaussian', True),
                                            ('gaussian', False), ('gaussian', True)])
def test_arnlb_equals_the_mmcv_derived_reference(mode, use_scale, impl):
    ref = randomize(AuthorsStyleARNL(C, mode=mode, use_scale=use_scale, norm_cfg=BN))
    ours = AdaptiveNonLocalBlock(C, mode=mode, use_scale=use_scale, norm_cfg=BN, impl=impl)
    assert sorted(ours.state_dict()) == sorted(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    ref.double().eval(), ours.double().eval()
    x = torch.randn(2, C, 5, 4, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-10, atol=1e-10)


def test_arnlb_use_scale_has_no_effect_in_gaussian_mode_as_mmcv():
    a = randomize(AdaptiveNonLocalBlock(C, mode='gaussian', use_scale=True)).eval()
    b = AdaptiveNonLocalBlock(C, mode='gaussian', use_scale=False).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, C, 4, 4)
    assert torch.equal(a(x), b(x))
    e = randomize(AdaptiveNonLocalBlock(C, use_scale=True)).eval()
    f = AdaptiveNonLocalBlock(C, use_scale=False).eval()
    f.load_state_dict(e.state_dict())
    assert not torch.allclose(e(x), f(x))


def test_arnl_head_temperature_is_deprecated_and_unused():
    head_kw = dict(in_channels=C, channels=4, num_classes=3)
    with pytest.warns(DeprecationWarning, match='temperature is unused .* lambda'):
        head = ARNLHead(temperature=0.05, **head_kw)
    assert not hasattr(head, 'temperature')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        plain = ARNLHead(**head_kw)
    assert not [w for w in caught if issubclass(w.category, DeprecationWarning)
                and 'temperature' in str(w.message)]
    plain.load_state_dict(head.state_dict())
    x = [torch.randn(1, C, 5, 5)]
    assert torch.equal(head.eval()(x), plain.eval()(x))
