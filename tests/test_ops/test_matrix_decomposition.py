"""nlseg.ops.matrix_decomposition against plain-torch references written here."""
import pytest
import torch
import torch.nn.functional as F

from nlseg.ops import matrix_decomposition as md

EPS = 1e-6


# ---- plain references (written independently of the module) -------------------------------
def ref_nmf(x, d, steps, one_step):
    def update_c(x, d, c):
        return c * (x.transpose(1, 2) @ d) / (c @ (d.transpose(1, 2) @ d) + EPS)

    with torch.set_grad_enabled(not one_step):
        c = torch.softmax(x.transpose(1, 2) @ d, dim=-1)
        for _ in range(steps):
            c = update_c(x, d, c)
            d = d * (x @ c) / (d @ (c.transpose(1, 2) @ c) + EPS)
    c = update_c(x, d, c)
    return d @ c.transpose(1, 2)


def ref_codes(x, d, inv_t):
    xn = x / x.norm(dim=1, keepdim=True).clamp_min(EPS)
    dn = d / d.norm(dim=1, keepdim=True).clamp_min(EPS)
    return torch.softmax(inv_t * xn.transpose(1, 2) @ dn, dim=-1)


def ref_kmeans(x, steps, d, inv_t, spherical, one_step):
    with torch.set_grad_enabled(not one_step):
        for _ in range(steps):
            c = ref_codes(x, d, inv_t)
            d = x @ (c / (c.sum(dim=1, keepdim=True) + EPS))
            if spherical:
                d = d / d.norm(dim=1, keepdim=True).clamp_min(EPS)
    return d


def ref_vq(x, d, steps, one_step, inv_t=100.0):
    d = ref_kmeans(x, steps, d, inv_t, False, one_step)
    return d @ ref_codes(x, d, inv_t).transpose(1, 2)


def ref_cd(x, d, steps, one_step, inv_t=100.0, beta=0.1):
    d = ref_kmeans(x, steps, d, inv_t, True, one_step)
    r = d.shape[-1]
    c = torch.linalg.inv(d.transpose(1, 2) @ d + beta * torch.eye(r, dtype=x.dtype)) @ (
        d.transpose(1, 2) @ x)
    return d @ c


def run_ours(name, x, d, steps, grad):
    fn = {'NMF': md.nmf_decompose, 'VQ': md.vq_decompose, 'CD': md.cd_decompose}[name]
    return md.reconstruct(*fn(x, d, steps, grad))


REFS = {'NMF': ref_nmf, 'VQ': ref_vq, 'CD': ref_cd}


def make_inputs(name, dtype=torch.float32, b=2, dim=8, n=20, r=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    if name == 'NMF':
        x = torch.rand(b, dim, n, generator=g, dtype=dtype)
        d = F.normalize(torch.rand(b, dim, r, generator=g, dtype=dtype), dim=1)
    else:
        x = torch.randn(b, dim, n, generator=g, dtype=dtype)
        d = F.normalize(torch.randn(b, dim, r, generator=g, dtype=dtype), dim=1)
    return x, d


# ---- tests ----------------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
@pytest.mark.parametrize('grad', ['one_step', 'bptt'])
def test_gradient_equals_reference(name, grad):
    """one_step: K steps under no_grad then one differentiable code update; bptt: plain
    autograd through all steps. Values and input gradients equal the references."""
    x, d = make_inputs(name, torch.float64)
    w = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    grads = []
    for fn in (lambda x: run_ours(name, x, d, 3, grad),
               lambda x: REFS[name](x, d, 3, grad == 'one_step')):
        xg = x.clone().requires_grad_()
        out = fn(xg)
        (out * w).sum().backward()
        grads.append((out.detach(), xg.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
def test_one_step_differs_from_bptt(name):
    x, d = make_inputs(name, torch.float64)
    gs = []
    for grad in ('one_step', 'bptt'):
        xg = x.clone().requires_grad_()
        run_ours(name, xg, d, 3, grad).square().sum().backward()
        gs.append(xg.grad)
    assert not torch.allclose(gs[0], gs[1])


def _saved_tensor_count(name, grad, steps):
    x, d = make_inputs(name)
    x.requires_grad_()
    count = 0

    def pack(t):
        nonlocal count
        count += 1
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run_ours(name, x, d, steps, grad)
    return count


@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
def test_one_step_graph_does_not_grow_with_steps(name):
    """The one-step gradient stores the same tensors for backward whatever K is (sec. 2.3:
    O(1) memory); BPTT stores more with every step."""
    assert _saved_tensor_count(name, 'one_step', 2) == _saved_tensor_count(name, 'one_step', 12)
    assert _saved_tensor_count(name, 'bptt', 12) > _saved_tensor_count(name, 'bptt', 2)


@pytest.mark.parametrize('name', ['NMF', 'VQ', 'CD'])
def test_gradcheck_bptt_float64(name):
    x, d = make_inputs(name, torch.float64, b=1, dim=4, n=6, r=2)
    x = x + 0.1 if name == 'NMF' else x      # stay inside the positive orthant
    fn = {'NMF': md.nmf_decompose, 'VQ': md.vq_decompose, 'CD': md.cd_decompose}[name]
    kwargs = {} if name == 'NMF' else dict(inv_t=2.0)   # a smooth softmax for finite diffs
    assert torch.autograd.gradcheck(
        lambda x, d: md.reconstruct(*fn(x, d, 2, 'bptt', **kwargs)),
        (x.requires_grad_(), d.requires_grad_()))


def test_gradcheck_final_updates_float64():
    x, d = make_inputs('NMF', torch.float64, b=1, dim=4, n=6, r=2)
    c = torch.rand(1, 6, 2, dtype=torch.float64) + 0.1
    for fn in (lambda x, d: md.nmf_update_coef(x, d, c),
               lambda x, d: md.nmf_update_bases(x, d, c),
               lambda x, d: md.softmax_codes(x, d, 3.0),
               lambda x, d: md.ridge_coef(x, d, 0.1)):
        assert torch.autograd.gradcheck(fn, (x.clone().requires_grad_(),
                                             d.clone().requires_grad_()))


def test_ridge_coef_is_the_closed_form():
    x, d = make_inputs('CD', torch.float64, r=5)
    coef = md.ridge_coef(x, d, 0.1)
    expected = torch.linalg.inv(d.transpose(1, 2) @ d + 0.1 * torch.eye(5, dtype=x.dtype)) @ (
        d.transpose(1, 2) @ x)
    torch.testing.assert_close(coef, expected.transpose(1, 2))
    # low precision inputs are solved in float32 and returned in their dtype
    coef16 = md.ridge_coef(x.bfloat16(), d.bfloat16(), 0.1)
    assert coef16.dtype == torch.bfloat16 and torch.isfinite(coef16).all()


def test_nmf_zero_input_is_finite():
    x = torch.zeros(1, 8, 10)
    d = F.normalize(torch.rand(1, 8, 4), dim=1)
    out = md.reconstruct(*md.nmf_decompose(x, d, 6))
    assert torch.isfinite(out).all() and out.abs().max() == 0


def test_unknown_grad_mode():
    x, d = make_inputs('NMF')
    with pytest.raises(ValueError, match="one_step"):
        md.nmf_decompose(x, d, 2, grad='truncated')
