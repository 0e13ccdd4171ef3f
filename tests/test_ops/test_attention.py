"""Fused softmax attention (nlseg.ops.kernels.softmax) against the dense reference."""
import math

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from nlseg.ops.affinity import apply_affinity, softmax_affinity
from nlseg.ops.attention import softmax_attention

FLASH_CPU = 'aten::_scaled_dot_product_flash_attention_for_cpu'
MATH = 'aten::_scaled_dot_product_attention_math'


def _inputs(b, n, m, d, dv, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()
            for shape in ((b, n, d), (b, m, d), (b, m, dv))]


def _op_names(fn):
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return {e.name for e in prof.events()}


SHAPES = [  # b, n, m, d, dv
    (2, 12, 12, 4, 4),
    (1, 12, 3, 4, 4),     # sub-sampled keys
    (2, 9, 9, 8, 3),      # gaussian mode: query/key dim C > value dim C'
    (1, 10, 10, 3, 6),    # value dim larger
    (1, 1, 1, 2, 2),      # 1x1 map
]


@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('scale', [1.0, 0.5])
def test_matches_dense_forward_and_gradients(shape, scale):
    q, k, v = _inputs(*shape)
    out = softmax_attention(q, k, v, scale)
    ref = apply_affinity(softmax_affinity(q, k, scale), v)
    assert out.shape == ref.shape == (shape[0], shape[1], shape[4])
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((out * w).sum(), (q, k, v))
    ref_grads = torch.autograd.grad((ref * w).sum(), (q, k, v))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('shape', [(1, 64, 64, 8, 8), (1, 64, 16, 8, 4)])
def test_cpu_flash_kernel_is_chosen_and_backward_is_chunked(shape, monkeypatch):
    import nlseg.ops.kernels.softmax as attention
    monkeypatch.setattr(attention, 'BACKWARD_CHUNK_ELEMENTS', 16 * shape[2])  # 16-row chunks
    q, k, v = _inputs(*shape)
    seen = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: seen.append(t.shape) or t,
                                                  lambda t: t):
        out = softmax_attention(q, k, v, 1.0)
    names = _op_names(lambda: out.sum().backward())
    names |= _op_names(lambda: softmax_attention(q, k, v, 1.0))
    assert FLASH_CPU in names and MATH not in names
    assert FLASH_CPU + '_backward' not in names  # replaced by the chunked GEMM backward
    assert seen and all(math.prod(s) < shape[1] * shape[2] for s in seen)  # nothing N x M saved
    ref = apply_affinity(softmax_affinity(q, k, 1.0), v)
    grads = torch.autograd.grad(softmax_attention(q, k, v, 1.0).square().sum(), (q, k, v))
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_gradcheck_float64():
    q, k, v = _inputs(1, 5, 4, 3, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *t: softmax_attention(*t, 0.7), (q, k, v))


def test_bf16_autocast_large_inputs_finite():
    q, k, v = (100 * t.detach() for t in _inputs(1, 32, 32, 16, 8))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = softmax_attention(q, k, v, 1.0)
    assert torch.isfinite(out).all()
    # logits of magnitude ~1e5: the softmax is one-hot; bf16 keeps the selected values
    ref = apply_affinity(softmax_affinity(q, k, 1.0), v)
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=2.0)


def test_bad_shapes():
    q, k, v = _inputs(1, 4, 4, 3, 3)
    with pytest.raises(ValueError, match='channels'):
        softmax_attention(q, k[..., :2], v, 1.0)
    with pytest.raises(ValueError, match='expects'):
        softmax_attention(q[0], k, v, 1.0)
