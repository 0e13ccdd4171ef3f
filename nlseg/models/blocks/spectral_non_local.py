"""Spectral non-local block (SNL) and its generalised form (gSNL), Zhu et al.

The non-local operator as a graph filter on a symmetric, non-negative, normalised affinity
(Chebyshev approximation, eq. 9 and 11 of the SNL paper), with Z = g(X) (C -> C'):

    S = (R_t R_p^T + R_p R_t^T) / 2,  R_t = relu(theta(X)), R_p = relu(phi(X)),  d = S 1
    A = D^-1/2 S D^-1/2 ('symmetric', the authors' ICCV'21 code) or D^-1 S ('random_walk',
        the paper's text); zero degrees give zero rows
    SNL:  Y = X + norm(w1(Z) + w2(A Z))                       (eq. 9)
    gSNL: Y = X + norm(w1(Z) + w2(A Z) + w3(2 A Z - Z))       (eq. 11)

w1, w2, w3 are 1x1 convs C' -> C. The W2 term has a plus sign (the authors' classification
code; their segmentation file has a minus, which only flips the sign of w2). ``norm`` is
zero-initialised (or, without a norm, the w convs are), so the block starts as the identity.
S has rank <= 2 C', so the efficient path computes d and A Z exactly in O(N C'^2) by
associativity (:func:`nlseg.ops.affinity.relu_dot_attention`); 'dense' forms A
(:meth:`SpectralNonLocalBlock.dense_affinity` returns it); 'auto' picks per forward.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model.weight_init import constant_init, normal_init

from nlseg.ops.affinity import NORMALIZATIONS, apply_affinity, normalize_affinity, \
    relu_dot_affinity, relu_dot_affinity_rows, relu_dot_attention
from nlseg.validation import check_bool, check_choice
from .non_local_base import NonLocalBase, Queries, query_index
from .tokens import to_map, to_tokens

__all__ = ['SpectralNonLocalBlock']


class SpectralNonLocalBlock(NonLocalBase):
    """SNL block (gSNL when ``generalized``).

    Args:
        in_channels, reduction, conv_cfg, norm_cfg, impl: as :class:`NonLocalBlock`.
        generalized: add the w3 (2A - I) term (gSNL).
        affinity: 'symmetric' (D^-1/2 S D^-1/2) or 'random_walk' (D^-1 S).
        zero_init_output: as :class:`~nlseg.models.blocks.NonLocalBlock` (the output norm).
    """

    kernel = 'relu_dot'

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto',
                 generalized: bool = False, affinity: str = 'symmetric',
                 zero_init_output: bool = True) -> None:
        check_choice('affinity', affinity, NORMALIZATIONS)
        check_bool('generalized', generalized)
        super().__init__(in_channels, reduction=reduction, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, impl=impl, zero_init_output=zero_init_output)
        self.generalized = generalized
        self.affinity = affinity
        c, ci = in_channels, self.inter_channels
        self.theta = build_conv_layer(conv_cfg, c, ci, kernel_size=1)
        self.phi = build_conv_layer(conv_cfg, c, ci, kernel_size=1)
        self.g = build_conv_layer(conv_cfg, c, ci, kernel_size=1)
        bias = norm_cfg is None
        self.w1 = build_conv_layer(conv_cfg, ci, c, kernel_size=1, bias=bias)
        self.w2 = build_conv_layer(conv_cfg, ci, c, kernel_size=1, bias=bias)
        if generalized:
            self.w3 = build_conv_layer(conv_cfg, ci, c, kernel_size=1, bias=bias)
        self.norm = build_norm_layer(norm_cfg, c)[1] if norm_cfg is not None else nn.Identity()
        self.init_weights()

    @property
    def output_convs(self) -> list[nn.Module]:
        return [self.w1, self.w2] + ([self.w3] if self.generalized else [])

    def init_weights(self, std: float = 0.01) -> None:
        """theta/phi/g normal(std); norm (or, without norm, w1..w3) zero: identity. With
        ``zero_init_output=False`` the norm is weight 1, bias 0 and w1..w3 keep their
        default (kaiming) init."""
        for m in (self.theta, self.phi, self.g):
            normal_init(m, std=std)
        if not self.zero_init_output:
            for m in self.output_convs:
                m.reset_parameters()
            if not isinstance(self.norm, nn.Identity):
                constant_init(self.norm, 1, bias=0)
        elif isinstance(self.norm, nn.Identity):
            for m in self.output_convs:
                constant_init(m, 0)
        else:
            constant_init(self.norm, 0)

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """theta(X), phi(X) as (B, N, C') tokens (before the relu of the kernel)."""
        return to_tokens(self.theta(x)), to_tokens(self.phi(x))

    def dense_affinity(self, x: torch.Tensor, queries: Queries = None) -> torch.Tensor:
        """The normalised A (B, N, N) the block applies to Z = g(X) (D^-1/2 S D^-1/2 or
        D^-1 S of S = (R_t R_p^T + R_p R_t^T) / 2); rows ``queries`` only when given (then by
        :func:`~nlseg.ops.affinity.relu_dot_affinity_rows`, never N x N)."""
        self.check_input(x)
        theta, phi = self.query_key(x)
        index = query_index(queries, theta.shape[1], x.device)
        if index is not None:
            return relu_dot_affinity_rows(theta, phi, index, self.affinity)
        return normalize_affinity(relu_dot_affinity(theta, phi), self.affinity)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        z = self.g(x)
        theta, phi, z_tokens = to_tokens(self.theta(x)), to_tokens(self.phi(x)), to_tokens(z)
        impl = self.impl_for(theta.shape[1], phi.shape[1], theta.shape[-1], x)
        if impl == 'efficient':
            az = relu_dot_attention(theta, phi, z_tokens, self.affinity)
        else:
            a = normalize_affinity(relu_dot_affinity(theta, phi), self.affinity)
            az = apply_affinity(a, z_tokens)
        az = to_map(az, x)
        out = self.w1(z) + self.w2(az)
        if self.generalized:
            out = out + self.w3(2 * az - z)
        return x + self.norm(out)
