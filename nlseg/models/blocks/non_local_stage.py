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
storing N x N. The dense path forms A once and multiplies it for every unit
(:meth:`NonLocalStage.dense_affinity` returns it); 'auto' picks the faster path per forward.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model.weight_init import normal_init

from nlseg.ops.affinity import apply_affinity, softmax_affinity
from nlseg.ops.attention import softmax_attention
from nlseg.validation import check_choice, check_int
from .non_local_base import NL_MODES, SOFTMAX_MODES, NonLocalBase, Queries, query_index
from .output_projection import project_out
from .tokens import to_tokens

__all__ = ['NonLocalStage']


class NonLocalStageUnit(nn.Module):
    """One NS unit: its own value embedding ``g`` (C -> C') and output ``conv_out``."""

    def __init__(self, g: ConvModule, conv_out: ConvModule) -> None:
        super().__init__()
        self.g = g
        self.conv_out = conv_out


class NonLocalStage(NonLocalBase):
    """NS: ``num_units`` diffusion units sharing one affinity of the stage input.

    Args:
        in_channels, reduction, conv_cfg, norm_cfg, impl: as :class:`NonLocalBlock`.
        num_units: units of the stage (>= 1).
        use_scale: divide embedded_gaussian logits by sqrt(C').
        mode: 'embedded_gaussian' or 'gaussian' (row-normalised kernels only).
        zero_init_output: as :class:`NonLocalBlock` (every unit's output norm).
    """

    kernel = 'ns_stage'

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto', num_units: int = 2,
                 use_scale: bool = True, mode: str = 'embedded_gaussian',
                 zero_init_output: bool = True) -> None:
        check_choice('mode', mode, NL_MODES)
        if mode not in SOFTMAX_MODES:
            raise ValueError(f'NonLocalStage does not support mode={mode!r}: the diffusion '
                             'form Z + W (A - I) g needs a row-normalised affinity (rows '
                             f'summing to 1), which only the softmax modes {SOFTMAX_MODES} give')
        check_int('num_units', num_units)
        super().__init__(in_channels, reduction=reduction, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, impl=impl, zero_init_output=zero_init_output,
                         use_scale=use_scale)
        self.num_units = num_units
        self.mode = mode
        c, ci = in_channels, self.inter_channels
        if mode != 'gaussian':
            self.theta = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
            self.phi = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        self.units = nn.ModuleList(
            NonLocalStageUnit(ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None),
                              self.build_output_projection())
            for _ in range(num_units))
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
            self.init_output(unit.conv_out)

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """theta(X), phi(X) as (B, N, C') tokens (X itself for gaussian): evaluated once."""
        if self.mode == 'gaussian':
            tokens = to_tokens(x)
            return tokens, tokens
        return to_tokens(self.theta(x)), to_tokens(self.phi(x))

    def dense_affinity(self, x: torch.Tensor, queries: Queries = None) -> torch.Tensor:
        """The shared A (B, N, N) = softmax_j(scale theta_i . phi_j) of the stage input that
        every unit applies (Z^{n+1} = Z^n + conv_out_n((A - I) g_n(Z^n))); rows ``queries``
        only when given."""
        self.check_input(x)
        query, key = self.query_key(x)
        index = query_index(queries, query.shape[1], x.device)
        if index is not None:
            query = query[:, index]
        return softmax_affinity(query, key, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        query, key = self.query_key(x)
        impl = self.impl_for(query.shape[1], key.shape[1], query.shape[-1], x)
        affinity = softmax_affinity(query, key, self.scale) if impl == 'dense' else None
        z = x
        for unit in self.units:
            g = to_tokens(unit.g(z))
            if affinity is None:
                ag = softmax_attention(query, key, g, self.scale)
            else:
                ag = apply_affinity(affinity, g)
            z = z + project_out(unit.conv_out, ag - g, z)
        return z
