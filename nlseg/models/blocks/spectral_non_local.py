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

``output_relu=True`` applies a ReLU after the norm, Y = X + relu(norm(...)), as both authors'
codes do (their checkpoints need it); the paper's eq. 9 and 11 have none (default off).

``stage_num`` > 1 is a stage of units sharing ONE affinity (the paper's Table 4, "the
consecutively-connected nonlocal blocks have the same affinity matrix", the authors'
``stage_num``): A is computed once from the stage input X by ``theta`` and ``phi``, and unit
k (``units[k]``: its own g, w1, w2, w3 and norm) maps Z^k to
Z^{k+1} = Z^k + [relu] norm_k(w1_k(g_k(Z^k)) + w2_k(A g_k(Z^k)) [+ w3_k(2 A g_k - g_k)]),
Z^0 = X. ``stage_num=1`` is the single block, with its flat state_dict keys (theta, phi, g,
w1, w2, w3, norm).

S has rank <= 2 C', so the efficient path computes d and A Z exactly in O(N C'^2) by
associativity (:func:`nlseg.ops.kernels.relu_dot.relu_dot_attention`); 'dense' forms A once per
forward (:meth:`SpectralNonLocalBlock.dense_affinity` returns it) and multiplies it for every
unit; 'auto' picks per forward.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmengine.model.weight_init import constant_init, normal_init

from nlseg.ops.kernels.common import apply_affinity
from nlseg.ops.kernels.relu_dot import NORMALIZATIONS, normalize_affinity, relu_dot_affinity, \
    relu_dot_affinity_rows, relu_dot_attention
from nlseg.validation import check_bool, check_choice, check_int
from .non_local_base import NonLocalBase, Queries, query_index
from .tokens import to_map, to_tokens

__all__ = ['SpectralNonLocalBlock', 'SpectralNonLocalUnit']


def add_unit_layers(module: nn.Module, in_channels: int, inter_channels: int,
                    conv_cfg: Optional[dict], norm_cfg: Optional[dict],
                    generalized: bool) -> None:
    """Register one unit's layers on ``module``: ``g`` (C -> C'), ``w1``, ``w2`` (and ``w3``
    for gSNL) (C' -> C, bias only without a norm) and ``norm`` (``nn.Identity`` without
    ``norm_cfg``), in this order (the order of the state_dict keys)."""
    c, ci = in_channels, inter_channels
    module.g = build_conv_layer(conv_cfg, c, ci, kernel_size=1)
    bias = norm_cfg is None
    module.w1 = build_conv_layer(conv_cfg, ci, c, kernel_size=1, bias=bias)
    module.w2 = build_conv_layer(conv_cfg, ci, c, kernel_size=1, bias=bias)
    if generalized:
        module.w3 = build_conv_layer(conv_cfg, ci, c, kernel_size=1, bias=bias)
    module.norm = build_norm_layer(norm_cfg, c)[1] if norm_cfg is not None else nn.Identity()


class SpectralNonLocalUnit(nn.Module):
    """One unit of an SNL/gSNL stage (``stage_num`` > 1): its own g, w1, w2, (w3), norm; the
    affinity comes from the stage."""

    def __init__(self, in_channels: int, inter_channels: int, conv_cfg: Optional[dict],
                 norm_cfg: Optional[dict], generalized: bool) -> None:
        super().__init__()
        add_unit_layers(self, in_channels, inter_channels, conv_cfg, norm_cfg, generalized)


class SpectralNonLocalBlock(NonLocalBase):
    """SNL block (gSNL when ``generalized``), or a stage of ``stage_num`` units.

    Args:
        in_channels, reduction, conv_cfg, norm_cfg, impl: as :class:`NonLocalBlock`.
        generalized: add the w3 (2A - I) term (gSNL).
        affinity: 'symmetric' (D^-1/2 S D^-1/2) or 'random_walk' (D^-1 S).
        zero_init_output: as :class:`~nlseg.models.blocks.NonLocalBlock` (every unit's
            output norm). Must be False with ``output_relu``.
        stage_num: units sharing the affinity of the stage input (>= 1; 1: one block).
        output_relu: ReLU after each unit's norm, as the authors' codes (default False: the
            paper's eq. 9/11). The ReLU's gradient at a zero-initialised output is 0, so the
            gate would stay shut forever: ``output_relu=True`` needs ``zero_init_output=False``
            (ValueError otherwise).
        init_std: std of the normal init of theta/phi/g (default 0.01, the authors').
        zero_init_local: zero the terms that do not pass through A at init, w1 (and w3 of
            gSNL), so that the block starts as the NL block (eq. 9 with W1 = 0, the paper's
            remark "NL is SNL with W1 = 0"; gSNL with W1 = W3 = 0) and learns its local terms
            from there. Only with ``zero_init_output=False`` (with a zero output norm the block
            starts as the identity anyway; ValueError otherwise). Default False (the authors').
    """

    kernel = 'relu_dot'

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto',
                 generalized: bool = False, affinity: str = 'symmetric',
                 zero_init_output: bool = True, stage_num: int = 1,
                 output_relu: bool = False, init_std: float = 0.01,
                 zero_init_local: bool = False) -> None:
        check_choice('affinity', affinity, NORMALIZATIONS)
        check_bool('generalized', generalized)
        check_int('stage_num', stage_num)
        check_bool('output_relu', output_relu)
        check_bool('zero_init_local', zero_init_local)
        super().__init__(in_channels, reduction=reduction, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, impl=impl, zero_init_output=zero_init_output,
                         init_std=init_std)
        if zero_init_local and zero_init_output:
            raise ValueError(
                'zero_init_local=True needs zero_init_output=False: with a zero-initialised '
                'output norm the block starts as the identity, and zeroing w1/w3 as well '
                'changes nothing at init')
        if output_relu and zero_init_output:
            raise ValueError(
                'output_relu=True needs zero_init_output=False: the ReLU after a '
                'zero-initialised norm has gradient 0, so the block would stay the identity '
                'forever (the authors open the norm: weight 1, bias 0)')
        self.generalized = generalized
        self.affinity = affinity
        self.stage_num = stage_num
        self.output_relu = output_relu
        self.zero_init_local = zero_init_local
        c, ci = in_channels, self.inter_channels
        self.theta = build_conv_layer(conv_cfg, c, ci, kernel_size=1)
        self.phi = build_conv_layer(conv_cfg, c, ci, kernel_size=1)
        if stage_num == 1:
            add_unit_layers(self, c, ci, conv_cfg, norm_cfg, generalized)
        else:
            self.units = nn.ModuleList(
                SpectralNonLocalUnit(c, ci, conv_cfg, norm_cfg, generalized)
                for _ in range(stage_num))
        self.init_weights()

    @property
    def stage_units(self) -> list[nn.Module]:
        """The modules holding each unit's g, w1, w2, (w3), norm: the block itself for
        ``stage_num=1``, else ``units``."""
        return [self] if self.stage_num == 1 else list(self.units)

    def output_convs(self, unit: nn.Module) -> list[nn.Module]:
        return [unit.w1, unit.w2] + ([unit.w3] if self.generalized else [])

    def init_weights(self, std: Optional[float] = None) -> None:
        """theta/phi/g normal(std) (default ``init_std``); every unit's norm (or, without norm,
        w1..w3) zero: identity. With ``zero_init_output=False`` the norm is weight 1, bias 0
        and w1..w3 keep their default (kaiming) init."""
        std = self.init_std if std is None else std
        for m in [self.theta, self.phi] + [u.g for u in self.stage_units]:
            normal_init(m, std=std)
        for unit in self.stage_units:
            if not self.zero_init_output:
                for m in self.output_convs(unit):
                    m.reset_parameters()
                if self.zero_init_local:  # start as NL: Y = X + norm(w2 A Z)
                    for m in [unit.w1] + ([unit.w3] if self.generalized else []):
                        constant_init(m, 0)
                if not isinstance(unit.norm, nn.Identity):
                    constant_init(unit.norm, 1, bias=0)
            elif isinstance(unit.norm, nn.Identity):
                for m in self.output_convs(unit):
                    constant_init(m, 0)
            else:
                constant_init(unit.norm, 0)

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """theta(X), phi(X) as (B, N, C') tokens (before the relu of the kernel)."""
        return to_tokens(self.theta(x)), to_tokens(self.phi(x))

    def dense_affinity(self, x: torch.Tensor, queries: Queries = None) -> torch.Tensor:
        """The normalised A (B, N, N) the block (every unit of the stage) applies to Z = g(X)
        (D^-1/2 S D^-1/2 or D^-1 S of S = (R_t R_p^T + R_p R_t^T) / 2); rows ``queries`` only
        when given (then by :func:`~nlseg.ops.kernels.relu_dot.relu_dot_affinity_rows`,
        never N x N)."""
        self.check_input(x)
        theta, phi = self.query_key(x)
        index = query_index(queries, theta.shape[1], x.device)
        if index is not None:
            return relu_dot_affinity_rows(theta, phi, index, self.affinity)
        return normalize_affinity(relu_dot_affinity(theta, phi), self.affinity)

    def unit_output(self, unit: nn.Module, z: torch.Tensor, az: torch.Tensor) -> torch.Tensor:
        """[relu] norm(w1(Z) + w2(A Z) [+ w3(2 A Z - Z)]) of one unit (eq. 9 / 11)."""
        out = unit.w1(z) + unit.w2(az)
        if self.generalized:
            out = out + unit.w3(2 * az - z)
        out = unit.norm(out)
        return out.relu() if self.output_relu else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        theta, phi = self.query_key(x)
        impl = self.impl_for(theta.shape[1], phi.shape[1], theta.shape[-1], x)
        a = None
        if impl != 'efficient':
            a = normalize_affinity(relu_dot_affinity(theta, phi), self.affinity)
        y = x
        for unit in self.stage_units:
            z = unit.g(y)
            z_tokens = to_tokens(z)
            if a is None:
                az = relu_dot_attention(theta, phi, z_tokens, self.affinity)
            else:
                az = apply_affinity(a, z_tokens)
            y = y + self.unit_output(unit, z, to_map(az, x))
        return y
