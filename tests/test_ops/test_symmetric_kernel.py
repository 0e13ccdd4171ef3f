"""Symmetric non-negative shared-embedding kernels of NS (Tao et al. 2018, eq. 8-9, 12-13):
definition, eq. 8 written out, efficient == dense in values and gradients (float64)."""
import pytest
import torch

from nlseg.ops.kernels.ns_stage import SYMMETRIC_KERNELS, apply_diffusion, \
    symmetric_kernel, symmetric_kernel_affinity, symmetric_kernel_diffusion


def _randn(*shape, dtype=torch.float64, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_()


def _with_dead_rows(t):
    """Rows 0 and 3 all-negative: relu kills them, zero degree at those positions."""
    t = t.detach().clone()
    t[:, [0, 3]] = -t[:, [0, 3]].abs() - 0.1
    return t.requires_grad_()


def _eq8_loop(w, v):
    """(1 / C_i) sum_j w_ij (v_j - v_i) with C_i = sum_j w_ij, written out with the pairwise
    differences (B, N, N, Cv); 0 where C_i = 0."""
    diff = v.unsqueeze(1) - v.unsqueeze(2)                # [b, i, j] = v_j - v_i
    num = (w.unsqueeze(-1) * diff).sum(dim=2)
    c = w.sum(dim=-1, keepdim=True)
    return torch.where(c > 0, num / torch.where(c > 0, c, 1), torch.zeros_like(num))


@pytest.mark.parametrize('kernel', SYMMETRIC_KERNELS)
def test_kernel_is_symmetric_non_negative_and_matches_definition(kernel):
    t = _randn(2, 9, 4, seed=1)
    with torch.no_grad():
        t[..., 0] = t[..., 0].abs() + 0.1  # no dead row: every degree positive
    w = symmetric_kernel(t, kernel, scale=0.5)
    torch.testing.assert_close(w, w.transpose(1, 2))                      # eq. 12
    assert (w >= 0).all()
    if kernel == 'gaussian':
        ref = (0.5 * t @ t.transpose(1, 2)).exp()
    else:
        ref = t.relu() @ t.relu().transpose(1, 2)
    torch.testing.assert_close(w, ref)
    a = symmetric_kernel_affinity(t, kernel, scale=0.5)
    torch.testing.assert_close(a, w / w.sum(dim=-1, keepdim=True))        # eq. 9
    torch.testing.assert_close(a.sum(-1), torch.ones_like(a.sum(-1)))


@pytest.mark.parametrize('kernel', SYMMETRIC_KERNELS)
def test_affinity_rows_are_rows_of_the_full_affinity(kernel):
    t = _with_dead_rows(_randn(2, 7, 3, seed=2))
    rows = torch.tensor([5, 0, 3, 5])
    full = symmetric_kernel_affinity(t, kernel, 0.5)
    torch.testing.assert_close(symmetric_kernel_affinity(t, kernel, 0.5, rows=rows),
                               full[:, rows])


def test_relu_dot_scale_cancels_and_zero_degree_rows_are_zero():
    t = _with_dead_rows(_randn(1, 6, 3))
    a = symmetric_kernel_affinity(t, 'relu_dot')
    torch.testing.assert_close(a, symmetric_kernel_affinity(t, 'relu_dot', scale=7.0))
    assert (a[:, [0, 3]] == 0).all() and (a[:, :, [0, 3]] == 0).all()
    assert torch.isfinite(a).all()


@pytest.mark.parametrize('kernel', SYMMETRIC_KERNELS)
@pytest.mark.parametrize('dead_rows', [False, True])
def test_apply_diffusion_is_eq8(kernel, dead_rows):
    t, v = _randn(2, 8, 3, seed=1), _randn(2, 8, 5, seed=2)
    if dead_rows:
        t = _with_dead_rows(t)
    w = symmetric_kernel(t, kernel, scale=0.7)
    out = apply_diffusion(symmetric_kernel_affinity(t, kernel, scale=0.7), v)
    torch.testing.assert_close(out, _eq8_loop(w, v))
    if dead_rows and kernel == 'relu_dot':
        assert (out[:, [0, 3]] == 0).all()  # no neighbours: no diffusion (not -v)


@pytest.mark.parametrize('kernel', SYMMETRIC_KERNELS)
def test_diffusion_conserves_degree_weighted_mass(kernel):
    """sum_i C_i (L v)_i = sum_ij w_ij (v_j - v_i) = 0 because w is symmetric (eq. 12)."""
    t, v = _randn(2, 10, 3, seed=3, scale=0.5), _randn(2, 10, 4, seed=4)
    c = symmetric_kernel(t, kernel).sum(-1, keepdim=True)
    mass = (c * symmetric_kernel_diffusion(t, v, kernel)).sum(dim=1)
    torch.testing.assert_close(mass, torch.zeros_like(mass), atol=1e-10, rtol=0)


@pytest.mark.parametrize('kernel', SYMMETRIC_KERNELS)
@pytest.mark.parametrize('dead_rows', [False, True])
@pytest.mark.parametrize('n', [1, 7, 16])
def test_efficient_equals_dense_values_and_gradients(kernel, dead_rows, n):
    t, v = _randn(2, n, 4, seed=1), _randn(2, n, 3, seed=2)
    if dead_rows and n > 3:
        t = _with_dead_rows(t)
    scale = 0.5
    out = symmetric_kernel_diffusion(t, v, kernel, scale)
    ref = apply_diffusion(symmetric_kernel_affinity(t, kernel, scale), v)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    w = torch.randn_like(ref)
    grads = torch.autograd.grad((out * w).sum(), (t, v))
    ref_grads = torch.autograd.grad((ref * w).sum(), (t, v))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize('kernel', SYMMETRIC_KERNELS)
def test_efficient_gradcheck_float64(kernel):
    t, v = _with_dead_rows(_randn(1, 5, 3, seed=5)), _randn(1, 5, 2, seed=6)
    assert torch.autograd.gradcheck(
        lambda a, b: symmetric_kernel_diffusion(a, b, kernel, 0.5), (t, v))


def test_relu_dot_never_forms_n_by_n():
    """The relu_dot path's largest intermediate is O(N (C' + Cv)), found by a
    TorchDispatchMode that records every output shape."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Shapes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.numels = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for o in (out if isinstance(out, (tuple, list)) else [out]):
                if isinstance(o, torch.Tensor):
                    self.numels.append(o.numel())
            return out

    n = 64
    t, v = _randn(1, n, 4), _randn(1, n, 3, seed=1)
    with Shapes() as mode:
        out = symmetric_kernel_diffusion(t, v, 'relu_dot')
        out.sum().backward()
    assert max(mode.numels) < n * 8


@pytest.mark.parametrize('kernel', SYMMETRIC_KERNELS)
def test_half_precision_autocast_finite_and_float32(kernel):
    t, v = _randn(1, 12, 4, dtype=torch.float32, scale=3.0), _randn(1, 12, 3, seed=1,
                                                                    dtype=torch.float32)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = symmetric_kernel_diffusion(t, v, kernel, 0.5)
        ref = apply_diffusion(symmetric_kernel_affinity(t, kernel, 0.5), v)
    assert ref.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), ref, rtol=5e-2, atol=5e-2)


def test_bad_arguments():
    t = torch.randn(1, 4, 2)
    for fn in (lambda: symmetric_kernel(t, 'dot_product'),
               lambda: symmetric_kernel_affinity(t, 'softmax'),
               lambda: symmetric_kernel_diffusion(t, t, 'laplacian')):
        with pytest.raises(ValueError, match=r"kernel must be one of \('gaussian', "
                                             r"'relu_dot'\)"):
            fn()
    with pytest.raises(ValueError, match=r'same \(B, N\)'):
        symmetric_kernel_diffusion(t, torch.randn(1, 5, 2), 'relu_dot')
