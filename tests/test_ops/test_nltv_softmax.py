"""nltv_softmax: the primal-dual iteration of eq. 28/35, energies eq. 29-31, gradients."""
import pytest
import torch

from nlseg.ops.graph_operators import graph_divergence, graph_gradient
from nlseg.ops.knn_graph import knn_graph
from nlseg.ops.nltv_softmax import nltv_energies, nltv_softmax, nltv_step
from tests.helpers import one_thread_fixture


one_thread = pytest.fixture(autouse=True)(one_thread_fixture)


def random_problem(h=32, w=32, k=10, classes=4, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    feats = torch.rand(1, 3, h, w, generator=g)
    index, weight = knn_graph(feats, k=k)
    logits = torch.randn(1, classes, h, w, generator=g, dtype=dtype)
    return logits, index, weight.to(dtype)


def test_lam_zero_is_softmax_exactly():
    logits, index, weight = random_problem(8, 8, k=5, dtype=torch.float32)
    for iters in (0, 1, 7):
        out = nltv_softmax(logits, index, weight, lam=0.0, eps=0.5, iters=iters, tol=None)
        assert torch.equal(out, torch.softmax(logits / 0.5, dim=1))
        out = nltv_softmax(logits, index, weight, lam=0.0, eps=0.3, iters=iters, log=True)
        assert torch.equal(out, torch.log_softmax(logits / 0.3, dim=1))


def test_energy_formulas_match_eq29_eq30():
    logits, index, weight = random_problem(6, 6, k=4)
    o = logits.flatten(2)
    eta = torch.rand(1, 4, 36, 4, dtype=torch.float64) * 2 - 1  # |eta| <= lam = 1
    lam, eps = 1.0, 0.5
    e = nltv_energies(o, index, weight, eta, lam=lam, eps=eps)
    div = graph_divergence(eta, index, weight)
    a = torch.softmax((o - div) / eps, dim=1)
    fid = (-a * o + eps * a * a.log()).sum()
    primal = fid + lam * graph_gradient(a, index, weight).abs().sum()  # eq. 29
    dual = fid + (a * div).sum()  # eq. 30
    assert torch.allclose(e['primal'], primal.view(1))
    assert torch.allclose(e['dual'], dual.view(1))
    assert torch.allclose(e['gap'], (primal - dual).view(1))
    assert e['gap'] >= 0  # weak duality
    assert torch.allclose(e['rel_gap'], ((primal - dual).abs() / primal.abs()).view(1))


def test_paper_settings_energies_monotone_and_gap_decreases():
    # lam = 3, tau = 0.03, eps = 0.5 (paper): dual ascent is monotone (tau < 4 eps/||grad||^2
    # = 0.109 here, ||grad_w||^2 = 18.3), the primal energy decreases here too, but the gap
    # after 1500 iterations is 1.65e-3: the paper's tau is 3.6x below the step limit and the
    # rate is O(1 / (tau t)); 1e-3 is reached at iteration 1656 (see docs/nltv.md).
    logits, index, weight = random_problem()
    probs, hist = nltv_softmax(logits, index, weight, iters=1500, tol=1e-3,
                               return_history=True)
    p, d, gap = hist['primal'][:, 0], hist['dual'][:, 0], hist['rel_gap'][:, 0]
    assert hist['iters'] == 1500 and p.shape == (1501,)
    assert (d[1:] >= d[:-1] - 1e-9 * d.abs().max()).all()
    assert (p[1:] <= p[:-1] + 1e-9 * p.abs().max()).all()
    assert (p >= d - 1e-9).all()
    assert gap[0] > 0.5 and 1e-3 < gap[-1] < 2e-3
    assert (probs >= 0).all() and torch.allclose(probs.sum(1), torch.ones(1, 32, 32,
                                                                          dtype=torch.float64))


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32])
def test_gap_below_1e3_within_budget_with_safe_step(dtype):
    # tau='auto' = 0.95 * 4 eps / bound(||grad||^2): the paper's lam and eps reach 1e-3
    # (821 iterations in float64)
    logits, index, weight = random_problem(dtype=dtype)
    probs, hist = nltv_softmax(logits, index, weight, lam=3.0, eps=0.5, tau='auto',
                               iters=1500, tol=1e-3, return_history=True)
    assert hist['iters'] < 1500
    assert hist['rel_gap'][-1, 0] <= 1e-3 and hist['rel_gap'][0, 0] > 0.5
    assert hist['primal'][-1, 0] < hist['primal'][0, 0]
    assert (probs >= 0).all()
    assert torch.allclose(probs.sum(1), torch.ones_like(probs[:, 0]), atol=1e-5)


def test_stops_at_tol_and_batch_waits_for_all_images():
    l1, i1, w1 = random_problem(8, 8, k=4, seed=1)
    l2, i2, w2 = random_problem(8, 8, k=4, seed=2)
    logits, index, weight = torch.cat([l1, 3 * l2]), torch.cat([i1, i2]), torch.cat([w1, w2])
    _, hist = nltv_softmax(logits, index, weight, lam=0.5, tau='auto', tol=1e-3,
                           return_history=True)
    assert hist['iters'] < 1500
    assert (hist['rel_gap'][-1] <= 1e-3).all() and (hist['rel_gap'][-2] > 1e-3).any()
    single = nltv_softmax(l1, i1, w1, lam=0.5, tau=0.05, iters=hist['iters'], tol=None)
    batched = nltv_softmax(logits, index, weight, lam=0.5, tau=0.05, iters=hist['iters'],
                           tol=None)
    assert torch.allclose(batched[:1], single)  # images are independent


def piecewise_constant_scene():
    """16 x 16 image: background (class 0, grey 0.1), a square (class 1, grey 0.9) and a
    one-pixel-wide horizontal line (class 2, grey 0.5); noisy logits with isolated flips."""
    h = w = 16
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[2:8, 9:15] = 1
    labels[12, 1:15] = 2
    grey = torch.tensor([0.1, 0.9, 0.5])[labels]
    logits = 1.0 * torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1).double()
    flips = [(4, 3, 1), (9, 6, 2), (5, 11, 0), (14, 10, 1), (1, 1, 2)]
    for y, x, c in flips:
        logits[:, y, x] = 0.0
        logits[c, y, x] = 1.0
    return grey.view(1, 1, h, w), logits.unsqueeze(0), labels, flips


def test_fig1_effect_isolated_flips_removed_thin_line_kept():
    grey, logits, labels, flips = piecewise_constant_scene()
    noisy = logits.argmax(1)[0]
    assert all(noisy[y, x] == c != labels[y, x] for y, x, c in flips)
    index, weight = knn_graph(grey, k=10)
    probs = nltv_softmax(logits, index, weight.double(), lam=3.0, eps=0.5, tau='auto',
                         iters=1500, tol=1e-5)
    assert torch.equal(probs.argmax(1)[0], labels)  # flips removed, line (row 12) kept
    # the same lam on the local 4-neighbour graph with unit weights (the RSoftmax prior of
    # Fig. 1(b)) erases the one-pixel line: the nonlocal graph is what keeps it
    h = w = 16
    pos = torch.arange(h * w).view(h, w)
    nb = torch.stack([pos.roll(s, d) for s, d in ((1, 0), (-1, 0), (1, 1), (-1, 1))], -1)
    local_w = torch.ones(1, h * w, 4, dtype=torch.float64)
    local = nltv_softmax(logits, nb.view(1, h * w, 4), local_w, lam=3.0, tau='auto', tol=1e-5)
    assert (local.argmax(1)[0, 12, 1:15] != 2).sum() > 7


def test_gradcheck_bptt():
    logits, index, weight = random_problem(3, 3, k=2, classes=3, seed=4)
    logits.requires_grad_(True)
    weight.requires_grad_(True)

    def f(o, w):
        return nltv_softmax(o, index, w, lam=0.2, tau=0.3, eps=0.5, iters=3, tol=None)

    assert torch.autograd.gradcheck(f, (logits, weight))


def test_gradcheck_one_step_and_equivalence():
    logits, index, weight = random_problem(3, 3, k=2, classes=3, seed=5)
    logits.requires_grad_(True)
    weight.requires_grad_(True)
    kw = dict(lam=0.2, tau=0.3, eps=0.5)
    # one_step: gradient of the last iteration with eta^{T-1} held fixed
    with torch.no_grad():
        eta = torch.zeros(1, 3, 9, 2, dtype=torch.float64)
        for _ in range(3):
            _, eta = nltv_step(logits.flatten(2), index, weight, eta, **kw)
    assert torch.autograd.gradcheck(
        lambda o, w: nltv_step(o.flatten(2), index, w, eta, **kw)[0], (logits, weight))
    out = nltv_softmax(logits, index, weight, iters=4, tol=None, grad='one_step', **kw)
    ref = nltv_step(logits.flatten(2), index, weight, eta, **kw)[0].view_as(out)
    assert torch.allclose(out, nltv_softmax(logits, index, weight, iters=4, tol=None, **kw))
    cot = torch.randn_like(out)
    g1 = torch.autograd.grad((out * cot).sum(), (logits, weight))
    g2 = torch.autograd.grad((ref * cot).sum(), (logits, weight))
    assert all(torch.allclose(a, b) for a, b in zip(g1, g2))
    # with a single iteration both modes are the same function
    u = nltv_softmax(logits, index, weight, iters=1, tol=None, **kw)
    s = nltv_softmax(logits, index, weight, iters=1, tol=None, grad='one_step', **kw)
    gu = torch.autograd.grad((u * cot).sum(), (logits, weight))
    gs = torch.autograd.grad((s * cot).sum(), (logits, weight))
    assert all(torch.allclose(a, b) for a, b in zip(gu, gs))


def test_bf16_autocast_finite():
    logits, index, weight = random_problem(8, 8, k=4, dtype=torch.float32)
    logits = logits.bfloat16().requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = nltv_softmax(logits * 2, index, weight, iters=5, tol=None, log=True)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(logits.grad.float()).all()


@pytest.mark.parametrize('kwargs,name', [
    (dict(lam=-0.1), 'lam'), (dict(tau=0.0), 'tau'), (dict(tau=-1.0), 'tau'),
    (dict(tau='fast'), 'tau'), (dict(eps=0.0), 'eps'), (dict(grad='implicit'), 'grad'),
    (dict(iters=-1), 'iters'), (dict(tol=-1.0), 'tol')])
def test_bad_arguments(kwargs, name):
    logits, index, weight = random_problem(4, 4, k=3)
    with pytest.raises(ValueError, match=name):
        nltv_softmax(logits, index, weight, **kwargs)


def test_graph_shape_mismatch():
    logits, index, weight = random_problem(4, 4, k=3)
    with pytest.raises(ValueError, match='H \\* W'):
        nltv_softmax(logits[..., :3], index, weight)


@pytest.mark.parametrize('old, new', [('unrolled', 'bptt'), ('last_step', 'one_step')])
def test_deprecated_gradient_modes_warn_and_mean_the_new_ones(old, new):
    """One vocabulary with the hams (issue 14): 'unrolled' / 'last_step' are 'bptt' /
    'one_step', with a DeprecationWarning naming the new value."""
    logits, index, weight = random_problem(3, 3, k=2, classes=3, seed=6)
    logits.requires_grad_(True)
    kw = dict(lam=0.2, tau=0.3, eps=0.5, iters=3, tol=None)
    with pytest.warns(DeprecationWarning, match=rf"grad='{old}' is deprecated, use "
                                                rf"grad='{new}'"):
        out_old = nltv_softmax(logits, index, weight, grad=old, **kw)
    out_new = nltv_softmax(logits, index, weight, grad=new, **kw)
    torch.testing.assert_close(out_old, out_new, rtol=0, atol=0)
    g_old, = torch.autograd.grad(out_old.square().sum(), logits)
    g_new, = torch.autograd.grad(out_new.square().sum(), logits)
    torch.testing.assert_close(g_old, g_new, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"grad must be one of \('one_step', 'bptt'\), got "
                                         r"'implicit'"):
        nltv_softmax(logits, index, weight, grad='implicit', **kw)


@pytest.mark.parametrize('tau', [0.03, 'auto'])
def test_scaled_dual_fast_path_equals_the_reference_iteration(tau):
    """Inference runs the iteration in the scaled dual xi = w eta (_iterate_scaled); it equals
    the reference iteration (_iterate, the autograd path) to rounding: iterates, energies and
    the final dual variable, on a graph with zero-weight edges (the grid's border)."""
    from nlseg.ops.grid_graph import grid_graph
    from nlseg.ops.nltv_softmax import _iterate, _iterate_scaled
    logits, index, weight = random_problem(12, 10, k=6)
    weight[0, :7] = 0.0  # zero-weight edges: eta stays 0 there
    o = logits.flatten(2)
    if tau == 'auto':
        from nlseg.ops.graph_operators import graph_norm_bound
        tau = (0.95 * 4 * 0.5 / graph_norm_bound(index, weight)).view(1, 1, 1, 1)
    hist_ref = {key: [] for key in ('primal', 'dual', 'gap', 'rel_gap')}
    hist_fast = {key: [] for key in ('primal', 'dual', 'gap', 'rel_gap')}
    z_ref, eta_ref, t_ref = _iterate(o, index, weight, 3.0, tau, 0.5, 60, None, 1, hist_ref)
    z, eta, t = _iterate_scaled(o, index, weight, 3.0, tau, 0.5, 60, None, 1, hist_fast)
    assert t == t_ref == 60
    assert torch.allclose(z, z_ref, rtol=1e-10, atol=1e-10)
    assert torch.allclose(eta, eta_ref, rtol=1e-10, atol=1e-10)
    for key in hist_ref:
        assert torch.allclose(torch.stack(hist_fast[key]), torch.stack(hist_ref[key]),
                              rtol=1e-9, atol=1e-9), key
    gi, gw = grid_graph(1, 12, 10, dtype=torch.float64)
    z_ref, eta_ref, _ = _iterate(o, gi, gw, 3.0, 0.03, 0.5, 40, None, 1, None)
    z, eta, _ = _iterate_scaled(o, gi, gw, 3.0, 0.03, 0.5, 40, None, 1, None)
    assert torch.allclose(z, z_ref, rtol=1e-10, atol=1e-10)
    assert torch.allclose(eta, eta_ref, rtol=1e-10, atol=1e-10)


def test_inference_and_training_forwards_agree():
    """nltv_softmax without autograd (fast path) and with it (reference) give the same A."""
    logits, index, weight = random_problem(10, 10, k=5)
    with torch.no_grad():
        fast = nltv_softmax(logits, index, weight, iters=30, tol=None)
    ref = nltv_softmax(logits.clone().requires_grad_(True), index, weight, iters=30, tol=None)
    assert torch.allclose(fast, ref.detach(), rtol=1e-10, atol=1e-12)


def test_check_every_changes_only_when_the_stop_is_tested():
    logits, index, weight = random_problem()
    _, h1 = nltv_softmax(logits, index, weight, tau='auto', iters=2000, tol=1e-3,
                         return_history=True)
    _, h10 = nltv_softmax(logits, index, weight, tau='auto', iters=2000, tol=1e-3,
                          check_every=10, return_history=True)
    t1, t10 = h1['iters'], h10['iters']
    assert t1 < 2000 and t1 <= t10 < t1 + 10 and t10 % 10 == 0
