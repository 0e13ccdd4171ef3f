"""nlseg.ops.low_rank_projection against the materialised maps: W_u (D C^T), the BatchNorm
moments of that map over batch and positions, and the residual sum, in float64; the variance
stays accurate in float32 where the one-pass formula E[u^2] - E[u]^2 cancels."""
from __future__ import annotations

import pytest
import torch

from nlseg.ops.low_rank_projection import group_codes, low_rank_moments, low_rank_residual, \
    project_bases
from nlseg.ops.matrix_decomposition import reconstruct


def materialised(weight: torch.Tensor, bases: torch.Tensor, coef: torch.Tensor,
                 groups: int) -> torch.Tensor:
    """W_u [D_b1 C_b1^T; ...; D_bS C_bS^T] of shape (B, C_out, n), the reconstruction formed."""
    bs, d, _ = bases.shape
    recon = reconstruct(bases, coef).reshape(bs // groups, groups * d, -1)
    return torch.einsum('ck,bkn->bcn', weight, recon)


def random_factors(batch: int, groups: int, c_out: int = 5, d: int = 4, r: int = 3,
                   n: int = 11, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(c_out, groups * d, generator=g, dtype=dtype)
    bases = torch.randn(batch * groups, d, r, generator=g, dtype=dtype)
    # codes with a per-image offset, so the between-image spread of the means matters
    coef = torch.randn(batch * groups, n, r, generator=g, dtype=dtype)
    coef = coef + torch.randn(batch, 1, 1, 1, generator=g, dtype=dtype).expand(
        batch, groups, 1, 1).reshape(-1, 1, 1) * 3
    return weight, bases, coef


@pytest.mark.parametrize('groups', [1, 3])
@pytest.mark.parametrize('batch', [1, 2])
def test_factors_times_codes_is_the_conv_of_the_reconstruction(batch, groups):
    weight, bases, coef = random_factors(batch, groups)
    factors = project_bases(weight, bases, groups)
    codes = group_codes(coef, groups)
    assert factors.shape == (batch, 5, groups * 3) and codes.shape == (batch, 11, groups * 3)
    torch.testing.assert_close(factors @ codes.transpose(1, 2),
                               materialised(weight, bases, coef, groups), rtol=0, atol=1e-12)


@pytest.mark.parametrize('groups', [1, 2])
@pytest.mark.parametrize('batch', [1, 3])
def test_moments_are_the_batch_norm_statistics_of_the_map(batch, groups):
    weight, bases, coef = random_factors(batch, groups, seed=batch + groups)
    u = materialised(weight, bases, coef, groups)
    mean, var = low_rank_moments(project_bases(weight, bases, groups),
                                 group_codes(coef, groups))
    torch.testing.assert_close(mean, u.mean(dim=(0, 2)), rtol=0, atol=1e-12)
    torch.testing.assert_close(var, u.var(dim=(0, 2), unbiased=False), rtol=1e-12, atol=0)


def test_moments_are_differentiable():
    weight, bases, coef = random_factors(2, 2, c_out=3, d=2, r=2, n=5)
    factors = project_bases(weight, bases, 2).requires_grad_(True)
    codes = group_codes(coef, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, k: low_rank_moments(a, k), (factors, codes))


def test_variance_is_stable_in_float32_for_a_large_common_offset():
    """Codes 1000 + N(0, 0.01^2): the variance of U is ~1e-10 of E[U^2]. The centred
    covariance keeps float32's accuracy; the one-pass formula loses every digit (checked, so
    that this example really tells the two apart)."""
    g = torch.Generator().manual_seed(0)
    codes = 1000 + 0.01 * torch.randn(2, 4096, 8, generator=g)
    factors = torch.randn(1, 6, 8, generator=g).expand(2, 6, 8)  # same A: no between-term
    u = (factors.double() @ codes.double().transpose(1, 2))
    ref_var = u.var(dim=(0, 2), unbiased=False)
    _, var = low_rank_moments(factors, codes)
    assert ((var.double() - ref_var).abs() / ref_var).max() < 1e-3
    u32 = factors @ codes.transpose(1, 2)
    naive = u32.square().mean(dim=(0, 2)) - u32.mean(dim=(0, 2)).square()
    assert ((naive.double() - ref_var).abs() / ref_var).max() > 1


def test_residual_is_x_plus_the_low_rank_product_plus_the_shift():
    g = torch.Generator().manual_seed(1)
    x, factors = torch.randn(2, 5, 7, generator=g), torch.randn(2, 5, 3, generator=g)
    codes, shift = torch.randn(2, 7, 3, generator=g), torch.randn(5, generator=g)
    expected = x + factors @ codes.transpose(1, 2) + shift[:, None]
    x_before = x.clone()
    torch.testing.assert_close(low_rank_residual(x, factors, codes, shift), expected)
    assert torch.equal(x, x_before)  # the residual input is not modified


def test_shapes_that_do_not_fit_the_groups_raise():
    with pytest.raises(ValueError, match='do not fit 2 group'):
        project_bases(torch.randn(5, 6), torch.randn(4, 4, 3), groups=2)
    with pytest.raises(ValueError, match='do not split into 2 groups'):
        group_codes(torch.randn(3, 7, 2), groups=2)
