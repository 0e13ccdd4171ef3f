"""SNL/gSNL and NS variants of the papers (issue 12, section 3).

* SNL/gSNL ``output_relu``: the block equals a re-implementation of the authors' forward
  (SNL_ICCV2021's stage of units, float64); with the zero-initialised gate the ReLU would
  never let a gradient through, so that combination is refused.
* SNL/gSNL ``stage_num``: units sharing one affinity of the stage input (SNL paper Table 4);
  stage_num=1 is today's block with today's state_dict keys; dense loop reference;
  dense == efficient in values and gradients (float64).
* NS ``mode='symmetric_embedded_gaussian' | 'symmetric_relu_dot'``: one shared embedding,
  symmetric non-negative w(X_i, X_j), rows normalised by C_i(X) (Tao et al. eq. 8-9, 12-13),
  against eq. 8 written out; dense == efficient; gradcheck.
"""
import pytest
import torch
import torch.nn as nn

import nlseg  # noqa: F401  (registers the heads)
from nlseg.models import GSNLHead, NonLocalStage, NSHead, SNLHead, SpectralNonLocalBlock
from tests.references.snl_iccv2021 import AuthorsSNLStage
from tests.helpers import conv1x1, flat, unflat

C = 8  # in_channels; C' = 4
BN = dict(type='BN')


def randomize(module, seed=0, std=0.3):
    """Non-zero random parameters and BN statistics (running_var positive)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                if name.endswith('running_var'):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(std * torch.randn(t.shape, generator=g))
    return module


def x_input(b=2, h=5, w=4, dtype=torch.float64, seed=1, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(b, C, h, w, generator=g, dtype=dtype)).requires_grad_()


def snl(stage_num=1, generalized=False, output_relu=False, impl='auto', norm_cfg=BN,
        affinity='symmetric', seed=0):
    zero_init = not output_relu
    block = SpectralNonLocalBlock(C, norm_cfg=norm_cfg, impl=impl, generalized=generalized,
                                  affinity=affinity, stage_num=stage_num,
                                  output_relu=output_relu, zero_init_output=zero_init)
    return randomize(block, seed).double().eval()


def snl_units(block):
    return [block] if block.stage_num == 1 else list(block.units)


# =============================================================== SNL/gSNL: state_dict keys
TODAY_KEYS = ['theta.weight', 'theta.bias', 'phi.weight', 'phi.bias', 'g.weight', 'g.bias',
              'w1.weight', 'w2.weight', 'norm.weight', 'norm.bias', 'norm.running_mean',
              'norm.running_var', 'norm.num_batches_tracked']


@pytest.mark.parametrize('generalized', [False, True])
def test_stage_num_1_keeps_todays_state_dict_keys(generalized):
    keys = TODAY_KEYS if not generalized else TODAY_KEYS[:8] + ['w3.weight'] + TODAY_KEYS[8:]
    for kwargs in (dict(), dict(stage_num=1), dict(stage_num=1, output_relu=False)):
        block = SpectralNonLocalBlock(C, norm_cfg=BN, generalized=generalized, **kwargs)
        assert list(block.state_dict()) == keys
    assert not hasattr(SpectralNonLocalBlock(C), 'units')


def test_stage_num_3_has_one_theta_phi_and_its_own_weights_per_unit():
    block = SpectralNonLocalBlock(C, norm_cfg=BN, generalized=True, stage_num=3)
    keys = list(block.state_dict())
    assert keys[:4] == TODAY_KEYS[:4]  # theta, phi: one pair for the stage
    for k in range(3):
        unit_keys = [key[len(f'units.{k}.'):] for key in keys if key.startswith(f'units.{k}.')]
        assert unit_keys == TODAY_KEYS[4:8] + ['w3.weight'] + TODAY_KEYS[8:]
    assert len(keys) == 4 + 3 * (len(TODAY_KEYS) - 3)
    weights = [u.g.weight for u in block.units]
    assert weights[0] is not weights[1]
    block = randomize(block)
    assert not torch.equal(block.units[0].w1.weight, block.units[1].w1.weight)


# ======================================================== SNL/gSNL: dense loop reference
def reference_affinity(block, x):
    r_t = flat(conv1x1(x, block.theta)).relu()
    r_p = flat(conv1x1(x, block.phi)).relu()
    s = (r_t @ r_p.transpose(1, 2) + r_p @ r_t.transpose(1, 2)) / 2
    d = s.sum(-1)
    power = 0.5 if block.affinity == 'symmetric' else 1.0
    inv = torch.where(d > 0, d, 1) ** -power * (d > 0)
    a = inv.unsqueeze(-1) * s
    return a * inv.unsqueeze(-2) if block.affinity == 'symmetric' else a


def reference_stage(block, x):
    """A from the stage input once; every unit: Z <- Z + [relu] norm(w1 g + w2 A g [+ w3 (2 A g
    - g)]) with its own g, w1, w2, w3 and norm."""
    a = reference_affinity(block, x)
    z = x
    for unit in snl_units(block):
        g = conv1x1(z, unit.g)
        ag = unflat(a @ flat(g), g)
        out = conv1x1(g, unit.w1) + conv1x1(ag, unit.w2)
        if block.generalized:
            out = out + conv1x1(2 * ag - g, unit.w3)
        out = unit.norm(out)
        z = z + (out.relu() if block.output_relu else out)
    return z


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('stage_num', [1, 3])
@pytest.mark.parametrize('generalized', [False, True])
@pytest.mark.parametrize('output_relu', [False, True])
@pytest.mark.parametrize('affinity', ['symmetric', 'random_walk'])
def test_stage_equals_dense_loop_reference(impl, stage_num, generalized, output_relu, affinity):
    block = snl(stage_num, generalized, output_relu, impl, affinity=affinity)
    x = x_input()
    out = block(x)
    assert not torch.allclose(out, x)
    torch.testing.assert_close(out, reference_stage(block, x), rtol=1e-10, atol=1e-12)


def test_stage_units_each_change_the_output():
    """stage_num=3 differs from the first unit alone: the later units really run."""
    block = snl(stage_num=3, generalized=True)
    x = x_input()
    single = snl(stage_num=1, generalized=True)
    single.load_state_dict({**{k: v for k, v in block.state_dict().items()
                               if not k.startswith('units.')},
                            **{k[len('units.0.'):]: v for k, v in block.state_dict().items()
                               if k.startswith('units.0.')}})
    torch.testing.assert_close(single(x), reference_stage(single, x))
    assert not torch.allclose(block(x), single(x))


def test_affinity_computed_once_from_the_stage_input():
    for impl in ('dense', 'efficient'):
        block = snl(stage_num=3, impl=impl)
        seen = {'theta': [], 'phi': []}
        for name in seen:
            getattr(block, name).register_forward_hook(
                lambda m, inp, out, name=name: seen[name].append(inp[0]))
        g_inputs = []
        for unit in block.units:
            unit.g.register_forward_hook(lambda m, inp, out: g_inputs.append(inp[0]))
        x = x_input()
        block(x)
        assert len(seen['theta']) == len(seen['phi']) == 1
        assert seen['theta'][0] is x and seen['phi'][0] is x
        assert len(g_inputs) == 3 and g_inputs[0] is x
        assert not torch.equal(g_inputs[1], x)  # later units see the previous unit's output


@pytest.mark.parametrize('stage_num', [1, 3])
@pytest.mark.parametrize('generalized', [False, True])
@pytest.mark.parametrize('output_relu', [False, True])
def test_stage_dense_equals_efficient_values_and_gradients(stage_num, generalized, output_relu):
    dense = snl(stage_num, generalized, output_relu, 'dense', seed=3)
    efficient = snl(stage_num, generalized, output_relu, 'efficient', seed=3)
    x = x_input()
    out_d, out_e = dense(x), efficient(x)
    torch.testing.assert_close(out_e, out_d, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(out_d)
    params_d, params_e = list(dense.parameters()), list(efficient.parameters())
    grads_d = torch.autograd.grad((out_d * w).sum(), [x] + params_d)
    grads_e = torch.autograd.grad((out_e * w).sum(), [x] + params_e)
    for a, b in zip(grads_e, grads_d):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_stage_gradcheck_float64():
    block = snl(stage_num=2, generalized=True, output_relu=True, impl='efficient',
                norm_cfg=None)
    x = x_input(b=1, h=3, w=2)
    assert torch.autograd.gradcheck(block, (x,), fast_mode=True)


@pytest.mark.parametrize('output_relu', [False, True])
@pytest.mark.parametrize('norm_cfg', [None, BN])
def test_stage_identity_at_zero_init(output_relu, norm_cfg):
    block = SpectralNonLocalBlock(C, norm_cfg=norm_cfg, stage_num=3, generalized=True,
                                  output_relu=output_relu,
                                  zero_init_output=not output_relu)
    x = x_input(dtype=torch.float32)
    if output_relu:  # opened: not the identity
        assert not torch.allclose(block(x), x)
    else:
        torch.testing.assert_close(block(x), x)


# ============================================= SNL/gSNL: output_relu == the authors' forward
def load_into_authors(block, authors):
    """Copy our weights into the authors' modules (our theta/phi/g biases are zeroed: the
    authors' convs have none)."""
    with torch.no_grad():
        for ours, theirs in ((block.theta, authors.t), (block.phi, authors.p)):
            theirs.weight.copy_(ours.weight)
            ours.bias.zero_()
        for unit, layer in zip(snl_units(block), authors.layers):
            layer.g.weight.copy_(unit.g.weight)
            unit.g.bias.zero_()
            for k in (1, 2, 3)[:3 if block.generalized else 2]:
                getattr(layer, f'w_{k}').weight.copy_(getattr(unit, f'w{k}').weight)
            layer.bn.load_state_dict(unit.norm.state_dict())


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('stage_num', [1, 3])
@pytest.mark.parametrize('generalized', [False, True])
@pytest.mark.parametrize('train', [False, True])
def test_output_relu_equals_the_authors_forward(impl, stage_num, generalized, train):
    block = snl(stage_num, generalized, output_relu=True, impl=impl)
    authors = AuthorsSNLStage(C, C // 2, stage_num, generalized).double()
    load_into_authors(block, authors)
    block.train(train), authors.train(train)
    x = x_input()
    x_dead = x.detach().clone()
    x_dead[0, :, 0, 0] = 0  # a position of zero degree: relu(t) = relu(p) = 0 there
    for inp in (x, x_dead):
        torch.testing.assert_close(block(inp), authors(inp), rtol=1e-10, atol=1e-12)
    if not train:
        grad = torch.autograd.grad(block(x).square().sum(), x)[0]
        ref = torch.autograd.grad(authors(x).square().sum(), x)[0]
        torch.testing.assert_close(grad, ref, rtol=1e-9, atol=1e-11)


def test_output_relu_off_differs_from_the_authors_forward():
    """Without the switch (the paper's eq. 9/11) the block is not the authors' forward."""
    block = snl(output_relu=True)
    authors = AuthorsSNLStage(C, C // 2, 1, False).double().eval()
    load_into_authors(block, authors)
    plain = snl(output_relu=False)
    plain.load_state_dict(block.state_dict())
    x = x_input()
    assert not torch.allclose(plain(x), authors(x))


def test_output_relu_with_a_shut_gate_never_gets_a_gradient():
    """Why output_relu=True refuses zero_init_output=True: the ReLU's gradient at the
    zero-initialised output is 0, so nothing behind it (not even the norm) would ever train."""
    block = SpectralNonLocalBlock(C, norm_cfg=BN, output_relu=True, zero_init_output=False)
    nn.init.zeros_(block.norm.weight), nn.init.zeros_(block.norm.bias)  # the shut gate
    block(torch.randn(2, C, 5, 4)).square().sum().backward()
    assert all(not p.grad.any() for n, p in block.named_parameters() if p.grad is not None)
    with pytest.raises(ValueError, match=r'output_relu=True needs zero_init_output=False'):
        SpectralNonLocalBlock(C, output_relu=True)


# =================================================================== SNL heads
@pytest.mark.parametrize('cls', [SNLHead, GSNLHead])
def test_heads_expose_stage_num_and_output_relu(cls):
    head = cls(in_channels=6, channels=C, num_classes=3, norm_cfg=BN, stage_num=2,
               output_relu=True, zero_init_output=False)
    block = head.snl_block
    assert (block.stage_num, block.output_relu) == (2, True)
    assert block.generalized == (cls is GSNLHead) and len(block.units) == 2
    out = head([torch.randn(2, 6, 5, 4)])
    assert out.shape == (2, 3, 5, 4)
    default = cls(in_channels=6, channels=C, num_classes=3)
    assert (default.snl_block.stage_num, default.snl_block.output_relu) == (1, False)


# ====================================================================== NS: eq. 12-13
SYMMETRIC_MODES = ['symmetric_embedded_gaussian', 'symmetric_relu_dot']


def ns(mode, impl='auto', num_units=3, norm_cfg=BN, seed=0, use_scale=True,
       output_relu=False):
    stage = NonLocalStage(C, norm_cfg=norm_cfg, impl=impl, mode=mode, num_units=num_units,
                          use_scale=use_scale, output_relu=output_relu,
                          zero_init_output=not output_relu)
    return randomize(stage, seed).double().eval()


def eq8_stage(stage, x):
    """Tao et al. eq. 8-9 and 13 written out: t = theta(X) once, w_ij = exp(t_i . t_j /
    sqrt(C')) or relu(t_i) . relu(t_j), C_i = sum_j w_ij, and per unit n
    Z <- Z + conv_out_n(1 / C_i sum_j w_ij (g_n(Z)_j - g_n(Z)_i)) (0 where C_i = 0)."""
    t = flat(conv1x1(x, stage.theta))
    if stage.mode == 'symmetric_embedded_gaussian':
        scale = 0.5 if stage.use_scale else 1.0  # 1 / sqrt(C'), C' = 4
        w = (scale * t @ t.transpose(1, 2)).exp()
    else:
        w = t.relu() @ t.relu().transpose(1, 2)
    # eq. 12: symmetric and non-negative (to rounding: BLAS may sum t_i . t_j and t_j . t_i
    # in different orders)
    torch.testing.assert_close(w, w.transpose(1, 2), rtol=1e-14, atol=0)
    assert (w >= 0).all()
    c = w.sum(-1, keepdim=True)
    z = x
    for unit in stage.units:
        g = flat(conv1x1(z, unit.g))
        diff = g.unsqueeze(1) - g.unsqueeze(2)  # [b, i, j] = g_j - g_i
        lap = (w.unsqueeze(-1) * diff).sum(2)
        lap = torch.where(c > 0, lap / torch.where(c > 0, c, 1), torch.zeros_like(lap))
        out = unit.conv_out(unflat(lap, z))
        z = z + (out.relu() if stage.output_relu else out)
    return z


@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
def test_ns_symmetric_kernel_has_one_shared_embedding(mode):
    stage = NonLocalStage(C, mode=mode)
    assert hasattr(stage, 'theta') and not hasattr(stage, 'phi')
    assert not any(k.startswith('phi.') for k in stage.state_dict())
    assert hasattr(NonLocalStage(C), 'phi')  # today's kernel keeps theta and phi


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
@pytest.mark.parametrize('use_scale', [True, False])
def test_ns_symmetric_kernel_equals_eq8(impl, mode, use_scale):
    stage = ns(mode, impl, use_scale=use_scale)
    x = x_input(scale=0.5)
    out = stage(x)
    assert not torch.allclose(out, x)
    torch.testing.assert_close(out, eq8_stage(stage, x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
@pytest.mark.parametrize('train', [False, True])
def test_ns_output_relu_is_the_public_codes_unit(impl, train):
    """output_relu: Z <- Z + relu(norm(W (A - I) g)) per unit, the ReLU of SNL_ICCV2021's
    ns.py, against eq. 8 written out, in values and gradients; it changes the output."""
    stage = ns('symmetric_relu_dot', impl, output_relu=True).train(train)
    x = x_input(scale=0.5)
    reference = ns('symmetric_relu_dot', impl, output_relu=True).train(train)
    out = stage(x)
    torch.testing.assert_close(out, eq8_stage(reference, x), rtol=1e-10, atol=1e-12)
    plain = ns('symmetric_relu_dot', impl).train(train)
    assert not torch.allclose(out, plain(x))
    grad = torch.autograd.grad(stage(x).square().sum(), x)[0]
    ref = torch.autograd.grad(eq8_stage(reference, x).square().sum(), x)[0]
    torch.testing.assert_close(grad, ref, rtol=1e-9, atol=1e-11)


def test_ns_output_relu_refuses_the_shut_gate_and_reaches_the_head():
    with pytest.raises(ValueError, match=r'output_relu=True needs zero_init_output=False'):
        NonLocalStage(C, output_relu=True)
    with pytest.raises(TypeError, match='output_relu'):
        NonLocalStage(C, output_relu=1, zero_init_output=False)
    head = NSHead(in_channels=6, channels=C, num_classes=3, norm_cfg=BN, output_relu=True,
                  zero_init_output=False, mode='symmetric_relu_dot')
    assert head.ns_stage.output_relu and not NSHead(
        in_channels=6, channels=C, num_classes=3).ns_stage.output_relu
    assert head([torch.randn(2, 6, 5, 4)]).shape == (2, 3, 5, 4)


@pytest.mark.parametrize('impl', ['dense', 'efficient'])
def test_ns_relu_dot_position_without_neighbours_does_not_diffuse(impl):
    stage = ns('symmetric_relu_dot', impl, num_units=1)
    with torch.no_grad():
        stage.theta.conv.bias.fill_(-100.0)  # relu(theta) = 0 everywhere: every C_i = 0
    x = x_input()
    zeros = x.new_zeros(x.shape[0], stage.inter_channels, *x.shape[2:])
    torch.testing.assert_close(stage(x), x + stage.units[0].conv_out(zeros))


@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
@pytest.mark.parametrize('norm_cfg', [None, BN])
def test_ns_symmetric_dense_equals_efficient_values_and_gradients(mode, norm_cfg):
    dense = ns(mode, 'dense', norm_cfg=norm_cfg, seed=2)
    efficient = ns(mode, 'efficient', norm_cfg=norm_cfg, seed=2)
    x = x_input(scale=0.5)
    out_d, out_e = dense(x), efficient(x)
    torch.testing.assert_close(out_e, out_d, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(out_d)
    grads_d = torch.autograd.grad((out_d * w).sum(), [x] + list(dense.parameters()))
    grads_e = torch.autograd.grad((out_e * w).sum(), [x] + list(efficient.parameters()))
    for a, b in zip(grads_e, grads_d):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
def test_ns_symmetric_gradcheck_float64(mode):
    stage = ns(mode, 'efficient', num_units=2, norm_cfg=None)
    x = x_input(b=1, h=3, w=2, scale=0.5)
    assert torch.autograd.gradcheck(stage, (x,), fast_mode=True)


@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
def test_ns_symmetric_theta_once_on_the_stage_input(mode):
    stage = ns(mode, 'efficient')
    seen = []
    stage.theta.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    x = x_input()
    stage(x)
    assert len(seen) == 1 and seen[0] is x


@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
def test_ns_symmetric_identity_at_init_and_bf16_autocast(mode):
    stage = NonLocalStage(C, norm_cfg=BN, mode=mode)
    x = torch.randn(2, C, 5, 4)
    torch.testing.assert_close(stage(x), x)
    randomize(stage)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = stage(100 * x)
    assert torch.isfinite(out).all()


def test_ns_bad_mode_names_the_accepted_values():
    with pytest.raises(ValueError, match=r"mode must be one of \('embedded_gaussian', "
                                         r"'gaussian', 'symmetric_embedded_gaussian', "
                                         r"'symmetric_relu_dot'\), got 'relu_dot'"):
        NonLocalStage(C, mode='relu_dot')
    with pytest.raises(ValueError, match=r"does not support mode='dot_product'.*"
                                         r"row-normalised.*'symmetric_relu_dot'"):
        NonLocalStage(C, mode='dot_product')


@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
def test_ns_head_symmetric_mode(mode):
    head = NSHead(in_channels=6, channels=C, num_classes=3, norm_cfg=BN, mode=mode)
    assert head.ns_stage.mode == mode
    assert head([torch.randn(2, 6, 5, 4)]).shape == (2, 3, 5, 4)


# ============================================ dense_affinity, impl='auto', small maps, bf16
def test_snl_stage_dense_affinity_is_the_shared_affinity():
    block = snl(stage_num=3, generalized=True)
    x = x_input().detach()
    with torch.no_grad():
        a = block.dense_affinity(x)
        torch.testing.assert_close(a, reference_affinity(block, x), rtol=1e-12, atol=1e-12)
        rows = block.dense_affinity(x, queries=[0, 19, -1])
        torch.testing.assert_close(rows, a[:, [0, 19, -1]], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('mode', SYMMETRIC_MODES)
def test_ns_symmetric_dense_affinity_is_symmetric_kernel_row_normalised(mode):
    stage = ns(mode, num_units=2)
    x = x_input(scale=0.5).detach()
    with torch.no_grad():
        a = stage.dense_affinity(x)
        t = flat(conv1x1(x, stage.theta))
        w = ((0.5 * t @ t.transpose(1, 2)).exp() if mode == 'symmetric_embedded_gaussian'
             else t.relu() @ t.relu().transpose(1, 2))
        c = w.sum(-1, keepdim=True)
        torch.testing.assert_close(a, torch.where(c > 0, w / torch.where(c > 0, c, 1), 0.0))
        rows = stage.dense_affinity(x, queries=[3, 0, -2])
        torch.testing.assert_close(rows, a[:, [3, 0, -2]], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('name', ['snl_stage', 'ns_symmetric_relu_dot'])
def test_auto_follows_the_measured_table(name, monkeypatch):
    """N* = 17 for every kernel: a 4x4 map runs the dense path, an 8x8 map the efficient one
    (NS symmetric_relu_dot decides by the relu_dot crossover)."""
    import nlseg.ops.impl_choice as impl_choice
    threads = torch.get_num_threads()
    rows = [impl_choice.CrossoverRow('cpu', threads, k, {p: {4: 17.0} for p in impl_choice.PASSES})
            for k in impl_choice.KERNELS]
    monkeypatch.setattr(impl_choice, '_PARSED', rows)

    def make(impl):
        if name == 'snl_stage':
            return snl(stage_num=2, generalized=True, impl=impl)
        return ns('symmetric_relu_dot', impl)

    auto, dense, efficient = make('auto'), make('dense'), make('efficient')
    assert name == 'snl_stage' or auto.kernel == 'relu_dot'
    for (h, w), picked in (((4, 4), dense), ((8, 8), efficient)):
        x = x_input(h=h, w=w).detach()
        with torch.no_grad():
            assert torch.equal(auto(x), picked(x)), (h, w)


VARIANTS = {
    'snl_stage': lambda: SpectralNonLocalBlock(C, norm_cfg=BN, stage_num=3),
    'gsnl_stage_relu': lambda: SpectralNonLocalBlock(C, norm_cfg=BN, stage_num=2,
                                                     generalized=True, output_relu=True,
                                                     zero_init_output=False),
    **{f'ns_{m}': (lambda m=m: NonLocalStage(C, norm_cfg=BN, mode=m)) for m in SYMMETRIC_MODES},
}


@pytest.mark.parametrize('name', list(VARIANTS))
@pytest.mark.parametrize('size', [(1, 1), (1, 3)])
def test_tiny_maps_batch_one_eval(name, size):
    block = randomize(VARIANTS[name]()).eval()
    x = torch.randn(1, C, *size)
    with torch.no_grad():
        out = block(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


@pytest.mark.parametrize('name', list(VARIANTS))
def test_bf16_autocast_large_inputs_finite(name):
    block = randomize(VARIANTS[name](), std=0.1)
    x = (100 * torch.randn(2, C, 5, 6)).requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = block(x)
    assert torch.isfinite(out).all()
    out.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize('cls,kwargs', [
    (GSNLHead, dict(stage_num=2, output_relu=True, zero_init_output=False)),
    (SNLHead, dict(stage_num=3, zero_init_output=False)),
    (NSHead, dict(mode='symmetric_relu_dot', zero_init_output=False)),
    (NSHead, dict(mode='symmetric_embedded_gaussian', zero_init_output=False)),
], ids=['gsnl-stage-relu', 'snl-stage', 'ns-relu-dot', 'ns-symmetric-gaussian'])
def test_heads_train_every_unit(cls, kwargs):
    """One training step of the head: every unit's own weights and the shared embedding get a
    gradient (the open gate passes it through the ReLU and every unit)."""
    torch.manual_seed(0)
    head = cls(in_channels=6, channels=C, num_classes=3, norm_cfg=BN, **kwargs).train()
    head([torch.randn(2, 6, 6, 5)]).square().mean().backward()
    block = head.context_block
    grads = {n: p.grad for n, p in block.named_parameters()}
    assert all(g is not None and g.abs().sum() > 0 for n, g in grads.items()
               if n.startswith(('theta.', 'phi.')) or '.g.' in n or n.startswith('g.')), grads
    units = [k.split('.')[1] for k in grads if k.startswith('units.')]
    assert len(set(units)) == kwargs.get('stage_num', 2)
