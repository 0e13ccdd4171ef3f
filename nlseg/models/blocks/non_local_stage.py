"""Nonlocal stage (NS, Tao et al. 2018, eq. 8-9): a diffusion of shared-affinity units.

One affinity A is computed from the STAGE INPUT X by the shared ``theta`` and ``phi``
(row-normalised: softmax_j(theta_i . phi_j / sqrt(C')) for embedded_gaussian with use_scale,
softmax_j(x_i . x_j) for gaussian) and reused by every unit n (``units[n]``, each with its
own ``g`` and ``conv_out``):

    Z^0 = X,   Z^{n+1} = Z^n + conv_out_n((A - I) g_n(Z^n)).

(A - I) g is the graph-Laplacian (diffusion) form, stable when units are stacked; no ReLU
after the norm (the paper has none; the only public code adds one). The efficient path
computes (A - I) g = attention(theta, phi, g) - g with fused attention: theta and phi are
still evaluated once per forward, the fused kernel recomputes the logits per unit instead of
storing N x N. The dense path forms A once and multiplies it for every unit.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model.weight_init import normal_init

from nlseg.ops.affinity import apply_affinity, softmax_affinity
from nlseg.ops.attention import softmax_attention
from nlseg.validation import check_bool, check_int
from .non_local import IMPLS, NL_MODES, SOFTMAX_MODES, check_block_args, check_choice, \
    check_input, default_init_output, inter_channels_of, project_out, to_map, to_tokens, \
    zero_init_output

__all__ = ['NonLocalStage']


class NonLocalStageUnit(nn.Module):
    """One NS unit: its own value embedding ``g`` (C -> C') and output ``conv_out``."""

    def __init__(self, in_channels: int, inter_channels: int, conv_cfg: Optional[dict],
                 norm_cfg: Optional[dict]) -> None:
        super().__init__()
        self.g = ConvModule(in_channels, inter_channels, kernel_size=1, conv_cfg=conv_cfg,
                            act_cfg=None)
        self.conv_out = ConvModule(inter_channels, in_channels, kernel_size=1,
                                   conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)


class NonLocalStage(nn.Module):
    """NS: ``num_units`` diffusion units sharing one affinity of the stage input.

    Args:
        in_channels, reduction, conv_cfg, norm_cfg, impl: as :class:`NonLocalBlock`.
        num_units: units of the stage (>= 1).
        use_scale: divide embedded_gaussian logits by sqrt(C').
        mode: 'embedded_gaussian' or 'gaussian' (row-normalised kernels only).
        zero_init_output: as :class:`NonLocalBlock` (every unit's output norm).
    """

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto', num_units: int = 2,
                 use_scale: bool = True, mode: str = 'embedded_gaussian',
                 zero_init_output: bool = True) -> None:
        super().__init__()
        check_choice('impl', impl, IMPLS)
        check_bool('zero_init_output', zero_init_output)
        self.zero_init_output = zero_init_output
        check_choice('mode', mode, NL_MODES)
        if mode not in SOFTMAX_MODES:
            raise ValueError(f'NonLocalStage does not support mode={mode!r}: the diffusion '
                             'form Z + W (A - I) g needs a row-normalised affinity (rows '
                             f'summing to 1), which only the softmax modes {SOFTMAX_MODES} give')
        check_int('num_units', num_units)
        check_block_args(conv_cfg, norm_cfg, use_scale=use_scale)
        self.in_channels = in_channels
        self.reduction = reduction
        self.inter_channels = inter_channels_of(in_channels, reduction)
        self.impl = impl
        self.num_units = num_units
        self.use_scale = use_scale
        self.mode = mode
        c, ci = in_channels, self.inter_channels
        if mode != 'gaussian':
            self.theta = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
            self.phi = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        self.units = nn.ModuleList(
            NonLocalStageUnit(c, ci, conv_cfg, norm_cfg) for _ in range(num_units))
        self.init_weights()

    def init_weights(self, std: float = 0.01) -> None:
        """g/theta/phi normal(std); every unit's output norm (or conv) zero (identity), or
        ConvModule's init with ``zero_init_output=False``."""
        convs = [u.g for u in self.units]
        if self.mode != 'gaussian':
            convs += [self.theta, self.phi]
        for m in convs:
            normal_init(m.conv, std=std)
        for unit in self.units:
            if self.zero_init_output:
                zero_init_output(unit.conv_out)
            else:
                default_init_output(unit.conv_out)

    @property
    def efficient(self) -> bool:
        return self.impl != 'dense'

    @property
    def scale(self) -> float:
        if self.mode == 'embedded_gaussian' and self.use_scale:
            return self.inter_channels ** -0.5
        return 1.0

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """theta(X), phi(X) as (B, N, C') tokens (X itself for gaussian): evaluated once."""
        if self.mode == 'gaussian':
            tokens = to_tokens(x)
            return tokens, tokens
        return to_tokens(self.theta(x)), to_tokens(self.phi(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, type(self).__name__)
        query, key = self.query_key(x)
        affinity = None if self.efficient else softmax_affinity(query, key, self.scale)
        z = x
        for unit in self.units:
            g = to_tokens(unit.g(z))
            if affinity is None:
                ag = softmax_attention(query, key, g, self.scale)
            else:
                ag = apply_affinity(affinity, g)
            z = z + project_out(unit.conv_out, ag - g, z)
        return z
