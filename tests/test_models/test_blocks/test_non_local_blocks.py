"""NL, ARNLB, NS, SNL, gSNL blocks: mmcv equivalence, explicit formulas, dense == efficient,
identity at init, gradcheck, bf16 autocast, bad input."""
import pytest
import torch
import torch.nn.functional as F
from mmcv.cnn import NonLocal2d

import nlseg.models.blocks.non_local_stage as ns_module
from nlseg.models import AdaptiveNonLocalBlock, NonLocalBlock, NonLocalStage, \
    SpectralNonLocalBlock
from tests.helpers import conv1x1, flat, unflat

C = 8  # in_channels of the tiny blocks; C' = 4
BN = dict(type='BN')
NL_MODES = ['gaussian', 'embedded_gaussian', 'dot_product', 'concatenation']

# name -> (class, kwargs): every block and mode, used by the dense == efficient table
BLOCKS = {
    **{f'nl_{m}{"_sub" if s else ""}': (NonLocalBlock, dict(mode=m, sub_sample=s))
       for m in NL_MODES for s in (False, True)},
    'nl_embedded_gaussian_noscale': (NonLocalBlock, dict(use_scale=False)),
    'arnl_embedded_gaussian': (AdaptiveNonLocalBlock, dict()),
    'arnl_embedded_gaussian_scale_softplus': (AdaptiveNonLocalBlock,
                                              dict(use_scale=True, lambda_act='softplus')),
    'arnl_gaussian': (AdaptiveNonLocalBlock, dict(mode='gaussian')),
    'ns_embedded_gaussian': (NonLocalStage, dict(num_units=2)),
    'ns_gaussian': (NonLocalStage, dict(mode='gaussian', num_units=3)),
    'ns_symmetric_embedded_gaussian': (NonLocalStage, dict(mode='symmetric_embedded_gaussian',
                                                             num_units=2)),
    'snl_symmetric': (SpectralNonLocalBlock, dict()),
    'snl_random_walk': (SpectralNonLocalBlock, dict(affinity='random_walk')),
    'gsnl_symmetric': (SpectralNonLocalBlock, dict(generalized=True)),
    'gsnl_random_walk': (SpectralNonLocalBlock, dict(generalized=True,
                                                      affinity='random_walk')),
}


def randomize(module, seed=0, std=0.3):
    """Non-zero random parameters and BN statistics, so that no block is the identity."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                if name.endswith('running_var'):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(std * torch.randn(t.shape, generator=g))
    return module


def kwargs_of(name):
    return BLOCKS[name][1]


def build(name, impl, norm_cfg=BN, seed=0, **extra):
    cls, kwargs = BLOCKS[name]
    return randomize(cls(C, impl=impl, norm_cfg=norm_cfg, **kwargs, **extra), seed).eval()


def x_input(b=2, h=6, w=5, scale=1.0, dtype=torch.float32, seed=1):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(b, C, h, w, generator=g, dtype=dtype)).requires_grad_()


# ------------------------------------------------------------------------------ NL == mmcv
@pytest.mark.parametrize('mode', NL_MODES)
@pytest.mark.parametrize('sub_sample', [False, True])
@pytest.mark.parametrize('impl', ['dense', 'efficient'])
def test_loads_mmcv_nonlocal2d_state_dict_and_matches(mode, sub_sample, impl):
    ref = randomize(NonLocal2d(C, sub_sample=sub_sample, mode=mode, norm_cfg=BN)).eval()
    ours = NonLocalBlock(C, impl=impl, mode=mode, sub_sample=sub_sample, norm_cfg=BN).eval()
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = x_input()
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('mode', NL_MODES)
def test_init_like_mmcv(mode):
    ours, ref = NonLocalBlock(C, mode=mode), NonLocal2d(C, mode=mode)
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        if name.startswith('conv_out'):
            assert (a == 0).all() and (b == 0).all()
        elif name.endswith('weight') and 'concat' not in name:
            assert 0.003 < a.std() < 0.03  # normal(std=0.01) as mmcv


# ------------------------------------------------------------------- dense == efficient
@pytest.mark.parametrize('name', list(BLOCKS))
def test_dense_equals_efficient_forward_and_input_gradient(name):
    dense, efficient = build(name, 'dense'), build(name, 'efficient')
    auto = build(name, 'auto')
    x = x_input()
    outs = [m(x) for m in (dense, efficient, auto)]
    assert not torch.allclose(outs[0], x)  # the blocks really do something
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)
    n = x.shape[2] * x.shape[3]  # 'auto' gives exactly the path it resolves to
    m = n // 4 if kwargs_of(name).get('sub_sample') else n
    c = C if kwargs_of(name).get('mode') == 'gaussian' else C // 2
    resolved = auto.impl_for(n, m, c, x)
    torch.testing.assert_close(outs[2], outs[0] if resolved == 'dense' else outs[1],
                               rtol=0, atol=0)
    w = torch.randn_like(outs[0])
    g_dense, = torch.autograd.grad((outs[0] * w).sum(), x)
    g_eff, = torch.autograd.grad((outs[1] * w).sum(), x)
    torch.testing.assert_close(g_eff, g_dense, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------- explicit formulas
def _softmax_rows(logits):
    return logits.softmax(dim=-1)


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('mode,use_scale,lambda_act', [
    ('embedded_gaussian', False, None), ('embedded_gaussian', True, 'softplus'),
    ('gaussian', False, None)])
def test_arnlb_formula(impl, mode, use_scale, lambda_act):
    block = randomize(AdaptiveNonLocalBlock(C, impl=impl, mode=mode, use_scale=use_scale,
                                            lambda_act=lambda_act)).eval()
    x = x_input()
    lam = flat(F.conv2d(x, block.lambda_x.weight, block.lambda_x.bias, padding=1))  # (B,N,1)
    if lambda_act == 'softplus':
        lam = F.softplus(lam)
    if mode == 'gaussian':
        theta, phi = flat(x), flat(x)
    else:
        theta, phi = flat(conv1x1(x, block.theta)), flat(conv1x1(x, block.phi))
    scale = 4 ** -0.5 if use_scale and mode == 'embedded_gaussian' else 1.0
    a = _softmax_rows(lam * (theta @ phi.transpose(1, 2)) * scale)
    y = x + conv1x1(unflat(a @ flat(conv1x1(x, block.g)), x), block.conv_out)
    torch.testing.assert_close(block(x), y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('mode', ['embedded_gaussian', 'gaussian'])
def test_ns_formula(impl, mode):
    stage = randomize(NonLocalStage(C, impl=impl, mode=mode, num_units=3)).eval()
    x = x_input()
    if mode == 'gaussian':
        a = _softmax_rows(flat(x) @ flat(x).transpose(1, 2))
    else:
        a = _softmax_rows(flat(conv1x1(x, stage.theta)) @ flat(conv1x1(x, stage.phi))
                          .transpose(1, 2) / 2)  # sqrt(C') = 2
    eye = torch.eye(a.shape[-1])
    z = x
    for unit in stage.units:
        z = z + conv1x1(unflat((a - eye) @ flat(conv1x1(z, unit.g)), z), unit.conv_out)
    torch.testing.assert_close(stage(x), z, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('generalized', [False, True])
@pytest.mark.parametrize('affinity', ['symmetric', 'random_walk'])
def test_snl_gsnl_formula(impl, generalized, affinity):
    block = randomize(SpectralNonLocalBlock(C, impl=impl, norm_cfg=BN, generalized=generalized,
                                            affinity=affinity)).eval()
    x = x_input()
    r_t = flat(conv1x1(x, block.theta)).relu()
    r_p = flat(conv1x1(x, block.phi)).relu()
    s = (r_t @ r_p.transpose(1, 2) + r_p @ r_t.transpose(1, 2)) / 2
    d = s.sum(-1)
    power = 0.5 if affinity == 'symmetric' else 1.0
    inv = torch.where(d > 0, d, 1) ** -power * (d > 0)  # zero degrees give zero rows
    a = torch.diag_embed(inv) @ s
    if affinity == 'symmetric':
        a = a @ torch.diag_embed(inv)
    z = conv1x1(x, block.g)
    az = unflat(a @ flat(z), x)
    out = conv1x1(z, block.w1) + conv1x1(az, block.w2)
    if generalized:
        out = out + conv1x1(2 * az - z, block.w3)
    torch.testing.assert_close(block(x), x + block.norm(out), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------- NS: one affinity per forward
def test_ns_theta_phi_once_on_stage_input_and_shared_by_all_units(monkeypatch):
    for impl in ('dense', 'efficient'):
        stage = randomize(NonLocalStage(C, impl=impl, num_units=3)).eval()
        seen = {'theta': [], 'phi': []}
        for key in seen:
            getattr(stage, key).register_forward_hook(
                lambda m, inp, out, key=key: seen[key].append(inp[0]))
        calls = []

        def record(fn):
            def wrapper(query, key, *args):
                calls.append((query, key))
                return fn(query, key, *args)
            return wrapper

        name = 'softmax_attention' if impl == 'efficient' else 'softmax_affinity'
        monkeypatch.setattr(ns_module, name, record(getattr(ns_module, name)))
        x = x_input()
        stage(x)
        assert len(seen['theta']) == len(seen['phi']) == 1
        assert seen['theta'][0] is x and seen['phi'][0] is x
        # dense: A formed once; efficient: each of the 3 units attends with the same q, k
        assert len(calls) == (3 if impl == 'efficient' else 1)
        assert all(q is calls[0][0] and k is calls[0][1] for q, k in calls)
        monkeypatch.undo()


# ------------------------------------------------------------------------ identity at init
@pytest.mark.parametrize('name', list(BLOCKS))
@pytest.mark.parametrize('norm_cfg', [None, BN])
def test_identity_at_init(name, norm_cfg):
    cls, kwargs = BLOCKS[name]
    block = cls(C, norm_cfg=norm_cfg, **kwargs).train()

    def is_output(n):
        return 'conv_out' in n or n.split('.')[0] in ('w1', 'w2', 'w3', 'norm')

    assert all(not p.any() for n, p in block.named_parameters()
               if is_output(n) and (norm_cfg is None or 'norm' in n or 'bn' in n))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # everything but the output layer random and large
        for n, p in block.named_parameters():
            if not is_output(n):
                p.copy_(torch.randn(p.shape, generator=g))
    x = x_input()
    torch.testing.assert_close(block(x), x)


# ------------------------------------------------------------------------------- gradcheck
@pytest.mark.parametrize('name', ['nl_embedded_gaussian_sub', 'nl_gaussian', 'nl_dot_product',
                                  'nl_concatenation', 'arnl_embedded_gaussian', 'ns_gaussian',
                                  'snl_symmetric', 'gsnl_random_walk'])
def test_gradcheck_float64(name):
    block = build(name, 'efficient', norm_cfg=None).double()
    x = x_input(b=1, h=3, w=2, dtype=torch.float64)
    assert torch.autograd.gradcheck(block, (x,), fast_mode=True)


# -------------------------------------------------------------------------- bf16 autocast
@pytest.mark.parametrize('name', list(BLOCKS))
def test_bf16_autocast_large_inputs_finite(name):
    block = build(name, 'auto', norm_cfg=None)
    x = x_input(scale=100.0)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = block(x)
    assert torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()


# -------------------------------------------------------------------- small maps, batch 1
@pytest.mark.parametrize('name', list(BLOCKS))
@pytest.mark.parametrize('size', [(1, 1), (1, 3)])
def test_tiny_maps_batch_one_eval(name, size):
    block = build(name, 'auto')
    x = x_input(b=1, h=size[0], w=size[1])
    with torch.no_grad():
        out = block(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


# ------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize('cls,kwargs,match', [
    (NonLocalBlock, dict(mode='softmax'), r"mode must be one of \('gaussian'"),
    (NonLocalBlock, dict(impl='fast'), r"impl must be one of \('auto', 'dense', 'efficient'\)"),
    (AdaptiveNonLocalBlock, dict(lambda_act='relu'), r"lambda_act must be one of \(None, "),
    (AdaptiveNonLocalBlock, dict(mode='dot_product'), 'inverse temperature of a softmax'),
    (AdaptiveNonLocalBlock, dict(mode='bogus'), 'mode must be one of'),
    (NonLocalStage, dict(mode='dot_product'), 'row-normalised'),
    (NonLocalStage, dict(mode='concatenation'), 'row-normalised'),
    (NonLocalStage, dict(num_units=0), 'num_units must be an integer >= 1'),
    (NonLocalStage, dict(impl='sparse'), 'impl must be one of'),
    (SpectralNonLocalBlock, dict(affinity='laplacian'),
     r"affinity must be one of \('symmetric', 'random_walk'\)"),
    (SpectralNonLocalBlock, dict(reduction=0), 'reduction must be an integer >= 1'),
])
def test_bad_arguments(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(C, **kwargs)


@pytest.mark.parametrize('name', ['nl_embedded_gaussian', 'nl_gaussian', 'arnl_gaussian',
                                  'ns_embedded_gaussian', 'gsnl_symmetric'])
def test_wrong_input_channels(name):
    block = build(name, 'auto')
    with pytest.raises(ValueError, match=r'in_channels=8 but received an input with 6 '
                                         r'channels'):
        block(torch.randn(1, 6, 4, 4))
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        block(torch.randn(8, 4, 4))
