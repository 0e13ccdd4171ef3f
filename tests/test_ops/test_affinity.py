"""Dense affinities and their associative / chunked products (nlseg.ops)."""
import pytest
import torch

from nlseg.ops.affinity import apply_affinity, dot_product_affinity, dot_product_attention, \
    normalize_affinity, relu_dot_affinity, relu_dot_affinity_rows, relu_dot_attention
from nlseg.ops.concat_affinity import concatenation_affinity, concatenation_attention


def _randn(*shape, dtype=torch.float32, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_()


def _assert_same_value_and_grads(fn, ref_fn, inputs, rtol=1e-5, atol=1e-6):
    out, ref = fn(*inputs), ref_fn(*inputs)
    torch.testing.assert_close(out, ref, rtol=rtol, atol=atol)
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((out * w).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * w).sum(), inputs)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=10 * rtol, atol=10 * atol)


@pytest.mark.parametrize('n,m', [(10, 10), (10, 3), (1, 1)])
def test_dot_product_associative_equals_dense(n, m):
    inputs = [_randn(2, n, 4, seed=1), _randn(2, m, 4, seed=2), _randn(2, m, 3, seed=3)]
    _assert_same_value_and_grads(
        dot_product_attention,
        lambda q, k, v: apply_affinity(dot_product_affinity(q, k), v), inputs)


def test_dot_product_affinity_definition():
    q, k = _randn(1, 5, 3), _randn(1, 4, 3, seed=1)
    torch.testing.assert_close(dot_product_affinity(q, k), q @ k.transpose(1, 2) / 4)


def _with_dead_rows(t):
    """Make rows 0 and 3 all-negative so relu kills them: zero degree for those positions."""
    t = t.detach().clone()
    t[:, [0, 3]] = -t[:, [0, 3]].abs() - 0.1
    return t.requires_grad_()


@pytest.mark.parametrize('normalization', ['symmetric', 'random_walk'])
@pytest.mark.parametrize('dead_rows', [False, True])
def test_relu_dot_associative_equals_dense(normalization, dead_rows):
    theta, phi, value = _randn(2, 12, 4, seed=1), _randn(2, 12, 4, seed=2), _randn(2, 12, 3)
    if dead_rows:
        theta, phi = _with_dead_rows(theta), _with_dead_rows(phi)
    _assert_same_value_and_grads(
        lambda t, p, v: relu_dot_attention(t, p, v, normalization),
        lambda t, p, v: apply_affinity(normalize_affinity(relu_dot_affinity(t, p),
                                                          normalization), v),
        [theta, phi, value])


def test_relu_dot_affinity_definition_and_zero_degree_rows():
    theta, phi = _with_dead_rows(_randn(1, 6, 3)), _with_dead_rows(_randn(1, 6, 3, seed=1))
    r_t, r_p = theta.relu(), phi.relu()
    s = relu_dot_affinity(theta, phi)
    torch.testing.assert_close(s, (r_t @ r_p.transpose(1, 2) + r_p @ r_t.transpose(1, 2)) / 2)
    assert (s >= 0).all() and torch.equal(s, s.transpose(1, 2))
    d = s.sum(-1, keepdim=True)
    sym = normalize_affinity(s, 'symmetric')
    rw = normalize_affinity(s, 'random_walk')
    alive = d[0, :, 0] > 0
    assert not alive[0] and not alive[3] and alive.sum() == 4
    torch.testing.assert_close(sym[0][alive][:, alive],
                               (s / d.sqrt() / d.sqrt().transpose(1, 2))[0][alive][:, alive])
    torch.testing.assert_close(rw[0][alive], (s / d)[0][alive])
    torch.testing.assert_close(rw.sum(-1)[0][alive], torch.ones(4))
    for a in (sym, rw):
        assert torch.isfinite(a).all() and (a[0, ~alive] == 0).all()
    grad, = torch.autograd.grad(sym.sum() + rw.sum(), theta)
    assert torch.isfinite(grad).all()


@pytest.mark.parametrize('normalization', ['symmetric', 'random_walk'])
@pytest.mark.parametrize('dead_rows', [False, True])
def test_relu_dot_affinity_rows_equal_the_dense_rows(normalization, dead_rows):
    theta, phi = _randn(2, 12, 4, seed=1), _randn(2, 12, 4, seed=2)
    if dead_rows:
        theta, phi = _with_dead_rows(theta), _with_dead_rows(phi)
    index = torch.tensor([0, 3, 5, 11, 5])
    _assert_same_value_and_grads(
        lambda t, p: relu_dot_affinity_rows(t, p, index, normalization),
        lambda t, p: normalize_affinity(relu_dot_affinity(t, p), normalization)[:, index],
        [theta, phi])
    with pytest.raises(ValueError, match='normalization must be one of'):
        relu_dot_affinity_rows(theta, phi, index, 'laplacian')


def test_bad_normalization():
    t = torch.randn(1, 3, 2)
    with pytest.raises(ValueError, match='normalization.*symmetric'):
        relu_dot_attention(t, t, t, 'row')
    with pytest.raises(ValueError, match='normalization'):
        normalize_affinity(torch.ones(1, 2, 2), 'laplacian')


def _mmcv_style_concatenation(theta, phi, weight):
    """mmcv NonLocal2d.concatenation: repeat, concatenate, 1x1 conv + ReLU, / M."""
    n, m, c = theta.shape[1], phi.shape[1], theta.shape[2]
    t = theta.transpose(1, 2).reshape(-1, c, n, 1).repeat(1, 1, 1, m)
    p = phi.transpose(1, 2).reshape(-1, c, 1, m).repeat(1, 1, n, 1)
    logits = torch.nn.functional.conv2d(torch.cat([t, p], dim=1), weight).relu()
    return logits[:, 0] / m


@pytest.mark.parametrize('chunk_size', [1, 4, None])
@pytest.mark.parametrize('with_bias', [False, True])
def test_concatenation_chunked_equals_dense(chunk_size, with_bias):
    theta, phi, value = _randn(2, 9, 3, seed=1), _randn(2, 5, 3, seed=2), _randn(2, 5, 2)
    weight = _randn(1, 6, 1, 1, seed=4)
    bias = _randn(1, seed=5) if with_bias else None
    inputs = [theta, phi, value, weight] + ([bias] if with_bias else [])
    _assert_same_value_and_grads(
        lambda t, p, v, w, *b: concatenation_attention(t, p, v, w, *b, chunk_size=chunk_size),
        lambda t, p, v, w, *b: apply_affinity(concatenation_affinity(t, p, w, *b), v),
        inputs)
    if not with_bias:
        torch.testing.assert_close(concatenation_affinity(theta, phi, weight),
                                   _mmcv_style_concatenation(theta, phi, weight))


def test_gradcheck_float64():
    d = dict(dtype=torch.float64)
    t, p, v = _randn(1, 5, 3, **d), _randn(1, 5, 3, seed=1, **d), _randn(1, 5, 2, seed=2, **d)
    w = _randn(1, 6, seed=3, **d)
    assert torch.autograd.gradcheck(
        lambda *x: concatenation_attention(*x, chunk_size=2), (t, p, v, w))
    assert torch.autograd.gradcheck(lambda *x: relu_dot_attention(*x, 'symmetric'), (t, p, v))
    assert torch.autograd.gradcheck(lambda *x: relu_dot_attention(*x, 'random_walk'), (t, p, v))
    assert torch.autograd.gradcheck(dot_product_attention, (t, p, v))


def test_bf16_autocast_large_inputs_finite_and_float32():
    t, p, v = (_randn(1, 16, 4, seed=s, scale=100.0).detach() for s in range(3))
    w = torch.randn(1, 8)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        outs = [relu_dot_attention(t.bfloat16(), p.bfloat16(), v.bfloat16()),
                dot_product_attention(t.bfloat16(), p, v),
                concatenation_attention(t.bfloat16(), p, v, w)]
    for out in outs:
        assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_bad_chunk_size():
    t = torch.randn(1, 3, 2)
    with pytest.raises(ValueError, match='chunk_size'):
        concatenation_attention(t, t, t, torch.randn(1, 4), chunk_size=0)
