"""Property-based tests (hypothesis) of the ops that have a dense reference and an efficient
implementation, over batch 1..3, query/key counts N, M = H * W with H, W in 1..33, feature
sizes 1..8, float32 and float64:

* fused softmax attention == softmax_affinity then apply_affinity;
* associative dot_product_attention == dot_product_affinity then apply_affinity;
* associative relu_dot_attention == normalize_affinity(relu_dot_affinity) then
  apply_affinity, both normalisations, with positions whose relu features are all zero
  (zero degree);
* chunked concatenation_attention (any chunk size) == concatenation_affinity then
  apply_affinity, with and without bias;

forward values and the gradients of every input, and all finite. And knn_graph: the same
graph for any chunk size, whose neighbours are the k nearest by the eq. 11 distance.
The examples are reproducible (``derandomize=True``, see :mod:`.strategies`).

Also: the comparison fails for a 1 % error or a wrong gradient, and a regression test of
the CPU softmax_attention backward at large logits (found by these properties).
"""
from __future__ import annotations

from typing import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlseg.ops.affinity import NORMALIZATIONS, apply_affinity, dot_product_affinity, \
    dot_product_attention, normalize_affinity, relu_dot_affinity, relu_dot_attention, \
    softmax_affinity
from nlseg.ops.attention import softmax_attention
from nlseg.ops.concat_affinity import concatenation_affinity, concatenation_attention
from nlseg.ops.knn_graph import knn_graph
from .strategies import DTYPES, PROPERTY_SETTINGS, assert_close_scaled, batches, randn, \
    seeds, sides, tolerance

features = st.integers(1, 8)
#: The ops are cheap per example: twice the examples of the block properties.
OP_SETTINGS = settings(PROPERTY_SETTINGS, max_examples=2 * PROPERTY_SETTINGS.max_examples)


def check_same_values_and_grads(efficient: Callable[..., torch.Tensor],
                                dense: Callable[..., torch.Tensor],
                                inputs: list[torch.Tensor], seed: int) -> None:
    """efficient(*inputs) == dense(*inputs) and so are the gradients of every input; all
    finite, the dtype of the inputs."""
    inputs = [t.detach().requires_grad_() for t in inputs]
    out, ref = efficient(*inputs), dense(*inputs)
    assert out.dtype == ref.dtype == inputs[0].dtype
    assert torch.isfinite(out).all()
    tol = tolerance(inputs[0].dtype)
    assert_close_scaled(out, ref, tol, 'output')
    upstream = randn(*ref.shape, seed=seed, dtype=ref.dtype)
    grads = torch.autograd.grad((out * upstream).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * upstream).sum(), inputs)
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        assert torch.isfinite(g).all(), i
        assert_close_scaled(g, r, 10 * tol, f'gradient of input {i}')


@st.composite
def qkv(draw: st.DrawFn) -> tuple[list[torch.Tensor], int]:
    """query (B, N, D), key (B, M, D), value (B, M, Dv) with N, M = H * W; and a seed."""
    b, n, m = draw(batches), draw(sides) * draw(sides), draw(sides) * draw(sides)
    d, dv, seed = draw(features), draw(features), draw(seeds)
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))
    shapes = ((b, n, d), (b, m, d), (b, m, dv))
    return [randn(*s, seed=seed + i, dtype=dtype, scale=scale)
            for i, s in enumerate(shapes)], seed


@OP_SETTINGS
@given(case=qkv(), logit_scale=st.sampled_from([1.0, 0.5, 0.125]))
def test_softmax_attention_equals_dense(case: tuple, logit_scale: float) -> None:
    inputs, seed = case
    check_same_values_and_grads(
        lambda q, k, v: softmax_attention(q, k, v, logit_scale),
        lambda q, k, v: apply_affinity(softmax_affinity(q, k, logit_scale), v), inputs, seed)


@OP_SETTINGS
@given(case=qkv())
def test_dot_product_attention_equals_dense(case: tuple) -> None:
    inputs, seed = case
    check_same_values_and_grads(
        dot_product_attention, lambda q, k, v: apply_affinity(dot_product_affinity(q, k), v),
        inputs, seed)


@OP_SETTINGS
@given(case=qkv(), normalization=st.sampled_from(NORMALIZATIONS),
       dead_fraction=st.sampled_from([0.0, 0.3, 1.0]))
def test_relu_dot_attention_equals_dense(case: tuple, normalization: str,
                                         dead_fraction: float) -> None:
    """SNL's affinity is square: key = query positions (M = N). A fraction of the positions
    get all-negative theta and phi (zero relu features, zero degree, zero rows).

    Features are kept at least 5 % of their largest magnitude away from relu's kink at 0:
    a positive degree close to 0 (one tiny relu feature, the others dead) makes D^-1 S
    ill-conditioned, and its float32 gradient then differs from the exact one by far more
    than rounding in BOTH paths (measured: 10 % relative error at one position of the
    dense path, 4 % of the efficient one, against float64)."""
    (theta, _, _), seed = case
    n = theta.shape[1]
    phi = randn(*theta.shape, seed=seed + 3, dtype=theta.dtype)
    value = randn(theta.shape[0], n, 3, seed=seed + 4, dtype=theta.dtype)
    dead = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < dead_fraction

    def away_from_kink(t: torch.Tensor) -> torch.Tensor:
        margin = 0.05 * float(t.abs().max())
        t = torch.where(t >= 0, t + margin, t - margin)
        return torch.where(dead[None, :, None], -t.abs(), t)

    theta, phi = away_from_kink(theta), away_from_kink(phi)
    check_same_values_and_grads(
        lambda t, p, v: relu_dot_attention(t, p, v, normalization),
        lambda t, p, v: apply_affinity(normalize_affinity(relu_dot_affinity(t, p),
                                                          normalization), v),
        [theta, phi, value], seed)
    if bool(dead.any()):  # zero-degree rows give exactly zero, not NaN
        out = relu_dot_attention(theta, phi, value, normalization)
        assert torch.equal(out[:, dead], torch.zeros_like(out[:, dead]))


@OP_SETTINGS
@given(case=qkv(), chunk=st.integers(1, 1100), with_bias=st.booleans())
def test_concatenation_attention_any_chunk_equals_dense(case: tuple, chunk: int,
                                                        with_bias: bool) -> None:
    (theta, phi, value), seed = case
    c = theta.shape[-1]
    extra = [randn(1, 2 * c, 1, 1, seed=seed + 5, dtype=theta.dtype)]
    if with_bias:
        extra.append(randn(1, seed=seed + 6, dtype=theta.dtype))
    check_same_values_and_grads(
        lambda t, p, v, w, *b: concatenation_attention(t, p, v, w, *b, chunk_size=chunk),
        lambda t, p, v, w, *b: apply_affinity(concatenation_affinity(t, p, w, *b), v),
        [theta, phi, value, *extra], seed)


def eq11_distance(feats: torch.Tensor, sigma_a: float = 40.0,
                  sigma_b: float = 13.0 / 255.0) -> torch.Tensor:
    """Dense (B, N, N) eq. 11 distance |p_i - p_j|^2 / (2 sigma_a) + |f_i - f_j|^2 /
    (2 sigma_b) in float64, +inf on the diagonal (no self loops)."""
    b, c, h, w = feats.shape
    f = feats.double().flatten(2).transpose(1, 2)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    p = torch.stack([ys.flatten(), xs.flatten()], 1).double()
    d = (torch.cdist(p, p).square() / (2 * sigma_a)
         + torch.cdist(f, f).square() / (2 * sigma_b))
    return d + torch.diag(torch.full((h * w,), float('inf'), dtype=torch.float64))


@OP_SETTINGS
@given(b=batches, h=sides, w=sides, c=st.integers(1, 4), k=st.integers(1, 8),
       chunk=st.integers(1, 1100), dtype=st.sampled_from(DTYPES), seed=seeds)
def test_knn_graph_any_chunk_is_the_k_nearest(b: int, h: int, w: int, c: int, k: int,
                                              chunk: int, dtype: torch.dtype,
                                              seed: int) -> None:
    n = h * w
    feats = torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    if k >= n:  # no k other positions: a clear error naming k and N
        with pytest.raises(ValueError, match=rf'k must be an int with 1 <= k < N = H \* W = '
                                             rf'{n}'):
            knn_graph(feats, k=k, chunk_size=chunk)
        return
    index, weight = knn_graph(feats, k=k, chunk_size=chunk)
    ref_index, ref_weight = knn_graph(feats, k=k)
    assert index.shape == weight.shape == (b, n, k) and index.dtype == torch.long
    assert weight.dtype == dtype and torch.isfinite(weight).all() and (weight > 0).all()
    assert ((index >= 0) & (index < n)).all()
    assert (index != torch.arange(n).view(1, n, 1)).all()  # no self loops
    # the selected neighbours are the k nearest (returned in index order: compare sorted)
    d = eq11_distance(feats)
    nearest = torch.topk(d, k, dim=2, largest=False).values
    torch.testing.assert_close(torch.gather(d, 2, index).sort(dim=2).values, nearest,
                               rtol=1e-5, atol=1e-6)
    # the search is exact: the chunk size changes nothing, bit for bit
    assert torch.equal(index, ref_index) and torch.equal(weight, ref_weight)


def _dense_dot_product(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return apply_affinity(dot_product_affinity(q, k), v)


@pytest.mark.parametrize('broken,match', [
    (lambda q, k, v: 1.01 * dot_product_attention(q, k, v), 'output'),
    # right values, gradient of the values 1.5x too large
    (lambda q, k, v: dot_product_attention(q, k, 1.5 * v - 0.5 * v.detach()),
     'gradient of input 2'),
], ids=['value', 'gradient'])
def test_check_detects_a_broken_efficient_op(broken: Callable[..., torch.Tensor],
                                            match: str) -> None:
    """The comparison used above fails for a 1 % error in the values or a wrong gradient."""
    inputs = [randn(2, n, 3, seed=i) for i, n in enumerate((7, 5, 5))]
    check_same_values_and_grads(dot_product_attention, _dense_dot_product, inputs, seed=0)
    with pytest.raises(AssertionError, match=match):
        check_same_values_and_grads(broken, _dense_dot_product, inputs, seed=0)


def _attention_input_grads(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           upstream: torch.Tensor, dtype: torch.dtype,
                           dense: bool) -> tuple[torch.Tensor, ...]:
    inputs = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    out = (apply_affinity(softmax_affinity(*inputs[:2], 1.0), inputs[2]) if dense
           else softmax_attention(*inputs, 1.0))
    return torch.autograd.grad((out * upstream.to(dtype)).sum(), inputs)


@pytest.mark.parametrize('std', [4.0, 20.0])
def test_regression_softmax_attention_backward_as_accurate_as_dense(std: float) -> None:
    """Unscaled logits q . k of features of std ``std`` over 16 channels: about 16 std^2
    (250 and 6400), as in the gaussian mode. The CPU backward recomputes the logits, which
    differ from the forward kernel's by an ulp; it used to combine them with the kernel's
    logsumexp and output, so its float32 q/k gradients were ~10x further from the float64
    ones than the dense path's (std 4) and, where the softmax is saturated (std 20: one-hot,
    q/k gradient 1e-62), ~5e-5 instead of 0. Now as accurate as dense."""
    g = torch.Generator().manual_seed(0)
    k = std * torch.randn(1, 64, 16, generator=g, dtype=torch.float64)
    v = torch.randn(1, 64, 8, generator=g, dtype=torch.float64)
    q = k + 0.1 * std * torch.randn(1, 64, 16, generator=g, dtype=torch.float64)
    upstream = torch.randn(1, 64, 8, generator=g, dtype=torch.float64)
    exact = _attention_input_grads(q, k, v, upstream, torch.float64, dense=True)
    dense = _attention_input_grads(q, k, v, upstream, torch.float32, dense=True)
    efficient = _attention_input_grads(q, k, v, upstream, torch.float32, dense=False)
    for name, e, d, t in zip('qkv', efficient, dense, exact):
        err_eff = float((e.double() - t).abs().max())
        err_dense = float((d.double() - t).abs().max())
        assert err_eff <= 2 * err_dense + 1e-7 * float(t.abs().max()), (name, err_eff,
                                                                          err_dense)
    if std == 20.0:  # saturated: q and k get exactly no gradient, as in dense
        assert float(exact[0].abs().max()) < 1e-30
        assert torch.equal(efficient[0], torch.zeros_like(efficient[0]))
        assert torch.equal(efficient[1], torch.zeros_like(efficient[1]))
