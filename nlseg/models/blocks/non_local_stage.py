"""Nonlocal stage (NS, Tao et al. 2018, eq. 8-9): a diffusion of shared-affinity units.

One affinity A is computed from the STAGE INPUT X and reused by every unit n (``units[n]``,
each with its own ``g`` and ``conv_out``):

    Z^0 = X,   Z^{n+1} = Z^n + conv_out_n(L g_n(Z^n)),
    (L v)_i = 1 / C_i(X) * sum_j w(X_i, X_j) (v_j - v_i) = ((A - I) v)_i,   A = D^-1 W.

``mode`` names the kernel w (all row-normalised by C_i(X) = sum_j w_ij, eq. 9):

- 'embedded_gaussian' (default): softmax_j(theta_i . phi_j / sqrt(C')) (scale with use_scale),
  two embeddings ``theta`` and ``phi``: not symmetric.
- 'gaussian': softmax_j(x_i . x_j) of X itself: symmetric.
- 'symmetric_embedded_gaussian': eq. 13 with ONE shared embedding ``theta`` (no ``phi``):
  w_ij = exp(t_i . t_j / sqrt(C')), symmetric and positive (eq. 12).
- 'symmetric_relu_dot': eq. 13's dot product on one shared ``theta``, made non-negative by
  a ReLU: w_ij = relu(t_i) . relu(t_j) (``use_scale`` cancels in the row normalisation). A
  position with relu(t_i) = 0 has no neighbours (C_i = 0): its diffusion is 0.

The norm after each W^n. Eq. 8 has a bare weight matrix W^n acting on the diffusion of Z^n.
Here W^n is ``conv_out_n`` (a 1x1 conv C' -> C) after the unit's value embedding g_n (1x1 conv
C -> C', as W_g of the NL block), and ``conv_out_n`` carries ``norm_cfg`` (BN/SyncBN in the
configs), zero-initialised so that the stage starts as the identity, as the NL block does
(Wang et al.). The paper has no norm; with ``norm_cfg=None`` conv_out_n is the plain W^n
(with bias). No ReLU after the norm by default (the paper has none); ``output_relu=True``
adds the one of the only public code (SNL_ICCV2021's ``nls/ns.py``):
Z^{n+1} = Z^n + relu(conv_out_n(L g_n(Z^n))), which needs the opened gate
(``zero_init_output=False``: the ReLU's gradient at a zero output is 0).

Paths. softmax kernels: the efficient path computes (A - I) g = attention(q, k, g) - g with
fused attention (theta, phi evaluated once per forward; the fused kernel recomputes the
logits per unit instead of storing N x N). 'symmetric_relu_dot': W = R R^T has rank <= C',
the efficient path is the exact associative product of
:func:`nlseg.ops.kernels.ns_stage.symmetric_kernel_diffusion`, O(N C'^2). The dense path
forms A once and multiplies it for every unit (:meth:`NonLocalStage.dense_affinity` returns
it); 'auto' picks the faster path per forward.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model.weight_init import normal_init

from nlseg.ops.kernels.common import apply_affinity
from nlseg.ops.kernels.ns_stage import apply_diffusion, symmetric_kernel_affinity, \
    symmetric_kernel_diffusion
from nlseg.ops.kernels.softmax import softmax_affinity, softmax_attention
from nlseg.validation import check_bool, check_choice, check_int
from .non_local_base import NL_MODES, NonLocalBase, Queries, query_index
from .output_projection import project_out
from .tokens import to_tokens

__all__ = ['NonLocalStage', 'NS_MODES']

#: Kernels (``mode``) of the stage: today's two softmax modes and the symmetric
#: shared-embedding kernels of eq. 12-13.
NS_MODES = ('embedded_gaussian', 'gaussian', 'symmetric_embedded_gaussian',
            'symmetric_relu_dot')
#: Modes computed as a softmax (rows of A sum to 1).
_SOFTMAX_NS_MODES = ('embedded_gaussian', 'gaussian', 'symmetric_embedded_gaussian')
#: Modes with one shared embedding theta (eq. 13).
_SHARED_EMBEDDING_MODES = ('symmetric_embedded_gaussian', 'symmetric_relu_dot')


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
        use_scale: divide the embedded Gaussian logits by sqrt(C').
        mode: the kernel, one of :data:`NS_MODES` (see the module docstring).
        zero_init_output: as :class:`NonLocalBlock` (every unit's output norm).
        init_std: std of the normal init of g/theta/phi (default 0.01, mmcv's).
        output_relu: ReLU after each unit's output norm, as the public code (module
            docstring); needs ``zero_init_output=False`` (ValueError otherwise).
    """

    def __init__(self, in_channels: int, reduction: int = 2, conv_cfg: Optional[dict] = None,
                 norm_cfg: Optional[dict] = None, impl: str = 'auto', num_units: int = 2,
                 use_scale: bool = True, mode: str = 'embedded_gaussian',
                 zero_init_output: bool = True, init_std: float = 0.01,
                 output_relu: bool = False) -> None:
        if mode in NL_MODES and mode not in NS_MODES:
            raise ValueError(f'NonLocalStage does not support mode={mode!r}: the diffusion '
                             'form Z + W (A - I) g needs a row-normalised affinity (rows '
                             'divided by C_i(X) = sum_j w_ij of a non-negative kernel, eq. 9); '
                             f'accepted modes: {NS_MODES}')
        check_choice('mode', mode, NS_MODES)
        check_int('num_units', num_units)
        check_bool('output_relu', output_relu)
        if output_relu and zero_init_output:
            raise ValueError(
                'output_relu=True needs zero_init_output=False: the ReLU after a '
                'zero-initialised norm has gradient 0, so the stage would stay the identity '
                'forever')
        super().__init__(in_channels, reduction=reduction, conv_cfg=conv_cfg,
                         norm_cfg=norm_cfg, impl=impl, zero_init_output=zero_init_output,
                         use_scale=use_scale, init_std=init_std)
        self.num_units = num_units
        self.mode = mode
        self.output_relu = output_relu
        #: registry key (:data:`nlseg.ops.kernels.KERNELS`) whose crossover decides impl='auto'
        self.kernel = 'relu_dot' if mode == 'symmetric_relu_dot' else 'ns_stage'
        c, ci = in_channels, self.inter_channels
        if mode != 'gaussian':
            self.theta = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        if mode == 'embedded_gaussian':
            self.phi = ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None)
        self.units = nn.ModuleList(
            NonLocalStageUnit(ConvModule(c, ci, kernel_size=1, conv_cfg=conv_cfg, act_cfg=None),
                              self.build_output_projection())
            for _ in range(num_units))
        self.init_weights()

    def init_weights(self, std: Optional[float] = None) -> None:
        """g/theta/phi normal(std) (default ``init_std``); every unit's output norm (or conv)
        zero (identity), or ConvModule's init with ``zero_init_output=False``."""
        std = self.init_std if std is None else std
        convs = [u.g for u in self.units]
        if self.mode != 'gaussian':
            convs.append(self.theta)
        if self.mode == 'embedded_gaussian':
            convs.append(self.phi)
        for m in convs:
            normal_init(m.conv, std=std)
        for unit in self.units:
            self.init_output(unit.conv_out)

    @property
    def scale(self) -> float:
        """1/sqrt(C') for the embedded Gaussian kernels with ``use_scale``, else 1."""
        if self.use_scale and self.mode in ('embedded_gaussian', 'symmetric_embedded_gaussian'):
            return self.inter_channels ** -0.5
        return 1.0

    def query_key(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """theta(X), phi(X) as (B, N, C') tokens (X itself for gaussian; theta(X) twice for
        the shared-embedding modes): evaluated once."""
        if self.mode == 'gaussian':
            tokens = to_tokens(x)
            return tokens, tokens
        theta = to_tokens(self.theta(x))
        if self.mode in _SHARED_EMBEDDING_MODES:
            return theta, theta
        return theta, to_tokens(self.phi(x))

    def dense_affinity(self, x: torch.Tensor, queries: Queries = None) -> torch.Tensor:
        """The shared row-normalised A (B, N, N) = D^-1 W of the stage input that every unit
        applies (Z^{n+1} = Z^n + conv_out_n((A - I) g_n(Z^n))); rows ``queries`` only when
        given."""
        self.check_input(x)
        query, key = self.query_key(x)
        index = query_index(queries, query.shape[1], x.device)
        if self.mode == 'symmetric_relu_dot':
            return symmetric_kernel_affinity(query, 'relu_dot', rows=index)
        if index is not None:
            query = query[:, index]
        return softmax_affinity(query, key, self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        query, key = self.query_key(x)
        impl = self.impl_for(query.shape[1], key.shape[1], query.shape[-1], x)
        relu_dot = self.mode == 'symmetric_relu_dot'
        affinity = None
        if impl == 'dense':
            affinity = (symmetric_kernel_affinity(query, 'relu_dot') if relu_dot
                        else softmax_affinity(query, key, self.scale))
        z = x
        for unit in self.units:
            g = to_tokens(unit.g(z))
            if relu_dot:
                lg = (symmetric_kernel_diffusion(query, g, 'relu_dot') if affinity is None
                      else apply_diffusion(affinity, g))
            elif affinity is None:
                lg = softmax_attention(query, key, g, self.scale) - g
            else:
                lg = apply_affinity(affinity, g) - g  # softmax rows sum to 1
            out = project_out(unit.conv_out, lg, z)
            z = z + (out.relu() if self.output_relu else out)
        return z
