"""A 1x1 convolution, its BatchNorm statistics and a residual sum applied to a low-rank map
given by its factors, without forming the map (Hamburger's upper bread, Geng et al. 2021,
eq. 5-6).

The ham of Hamburger outputs, for every image b and group g of d channels, the rank-r
reconstruction D_bg C_bg^T (bases D_bg: d x r, codes C_bg: n x r, n = H*W). The upper bread
is a 1x1 convolution W_u (C_out x S d) with bias w_0. Writing W_u = [W_1 ... W_S] by groups,

    U_b = W_u [D_b1 C_b1^T; ...; D_bS C_bS^T] + w_0 = A_b K_b^T + w_0,
    A_b = [W_1 D_b1, ..., W_S D_bS]   (C_out x S r, :func:`project_bases`),
    K_b = [C_b1, ..., C_bS]           (n x S r,     :func:`group_codes`),

which costs n S r C_out multiply-adds instead of n S d C_out (8x fewer at d = 512, r = 64).
The per-channel moments of U over the batch and the positions follow from the factors
(:func:`low_rank_moments`), so BatchNorm folds into A_b and w_0, and the block's output
X + BN(U) is one batched matrix product added to X (:func:`low_rank_residual`). Only the
(n x S r) codes and the output are (C x n)-sized: the (S d x n) reconstruction and the
(C_out x n) convolution output are never formed. All functions are exact in real arithmetic
and differentiable by autograd.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ['project_bases', 'group_codes', 'low_rank_moments', 'low_rank_residual']


def project_bases(weight: Tensor, bases: Tensor, groups: int = 1) -> Tensor:
    """A_b = [W_1 D_b1, ..., W_S D_bS]: the 1x1 conv weight applied to the bases.

    Args:
        weight: (C_out, S*d) weight of the 1x1 convolution (kernel dims dropped).
        bases: (B*S, d, r) bases, group-major within each image (the layout of the hams).
        groups: S.

    Returns:
        (B, C_out, S*r) factors, column block g holding W_g D_bg.
    """
    c_out = weight.shape[0]
    bs, d, r = bases.shape
    if weight.shape[1] != groups * d or bs % groups:
        raise ValueError(f'project_bases: weight {tuple(weight.shape)} and bases '
                         f'{tuple(bases.shape)} do not fit {groups} group(s)')
    per_group = weight.reshape(c_out, groups, d)
    factors = torch.einsum('csd,bsdr->bcsr', per_group, bases.reshape(-1, groups, d, r))
    return factors.reshape(bs // groups, c_out, groups * r)


def group_codes(coef: Tensor, groups: int = 1) -> Tensor:
    """K_b = [C_b1, ..., C_bS]: (B*S, n, r) codes -> (B, n, S*r), so that
    A_b K_b^T = sum_g W_g D_bg C_bg^T (a view for S = 1, a copy of the codes otherwise)."""
    bs, n, r = coef.shape
    if bs % groups:
        raise ValueError(f'group_codes: {bs} code matrices do not split into {groups} groups')
    if groups == 1:
        return coef
    return coef.reshape(bs // groups, groups, n, r).permute(0, 2, 1, 3).reshape(
        bs // groups, n, groups * r)


def low_rank_moments(factors: Tensor, codes: Tensor) -> tuple[Tensor, Tensor]:
    """Mean and biased variance of each row of U_b = A_b K_b^T over all B*n columns (the
    statistics of a training-mode BatchNorm on U), from the factors alone.

    With m_b = mean_n(K_b) and the centred covariance Sigma_b = (K_b - m_b)^T (K_b - m_b) / n
    (S r x S r; centring first, never E[k k^T] - m m^T, so a large common offset of the codes
    does not cancel), mu_b = A_b m_b and

        mean = (1/B) sum_b mu_b,
        var  = (1/B) sum_b [diag(A_b Sigma_b A_b^T) + (mu_b - mean)^2]

    (the within-image variances pooled with the between-image spread of the means).

    Args:
        factors: (B, C, k) matrices A_b.
        codes: (B, n, k) matrices K_b.

    Returns:
        ``(mean, var)``, each of shape (C,).
    """
    n = codes.shape[1]
    code_mean = codes.mean(dim=1, keepdim=True)                           # (B, 1, k)
    centred = codes - code_mean                                           # (B, n, k)
    cov = torch.bmm(centred.transpose(1, 2), centred) / n                # (B, k, k)
    image_mean = torch.bmm(factors, code_mean.transpose(1, 2)).squeeze(-1)  # (B, C)
    within = (torch.bmm(factors, cov) * factors).sum(dim=-1)             # (B, C)
    mean = image_mean.mean(dim=0)
    between = (image_mean - mean).square()
    return mean, (within + between).mean(dim=0)


def low_rank_residual(x: Tensor, factors: Tensor, codes: Tensor, shift: Tensor) -> Tensor:
    """X + A_b K_b^T + shift, the output of the block, as one ``baddbmm`` (the only
    (C x n) tensor it allocates).

    Args:
        x: (B, C, n) residual input.
        factors: (B, C, k).
        codes: (B, n, k).
        shift: (C,) per-channel offset.
    """
    out = torch.baddbmm(x, factors, codes.transpose(1, 2))
    return out.add_(shift.unsqueeze(-1))
