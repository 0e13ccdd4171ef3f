"""Hamburger: a global context block from matrix decomposition (Geng et al., ICLR 2021).

Y = X + norm(W_u M(W_l X))   (paper eq. 5-6)

lower bread W_l: 1x1 conv C -> d (+ ReLU for NMF, whose input must be non-negative);
ham M: ``NMF2D``/``VQ2D``/``CD2D`` (low-rank reconstruction); upper bread W_u: 1x1 conv
d -> C followed by ``norm_cfg``. ``trailing_relu=True`` adds the final ReLU of the public
implementations (mmseg's ``Hamburger``: ``F.relu(x + enjoy)``; Enjoy-Hamburger's HamburgerV2).
"""
from __future__ import annotations

from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from torch import Tensor

from .hams import HAMS

__all__ = ['Hamburger']


class Hamburger(nn.Module):
    """Hamburger block (paper eq. 6, Fig. 1).

    Args:
        in_channels: channels C of the input and output.
        ham_channels: channels d seen by the ham (the latent dimension; paper: 512).
        ham_type: ``'NMF'`` (default), ``'VQ'`` or ``'CD'``.
        ham_kwargs: arguments of the ham (``MD_S``, ``MD_R``, ``train_steps``, ``eval_steps``,
            ``inv_t``, ``eta``, ``rand_init``, ``grad``, ``eval_seed``, ``beta`` for CD).
        norm_cfg: norm after the upper bread (paper: BN; ``None``: no norm, conv with bias).
        conv_cfg: conv layer config of both breads.
        trailing_relu: apply ReLU to the sum, as mmseg and the authors' code do.
    """

    def __init__(self, in_channels: int, ham_channels: int = 512, ham_type: str = 'NMF',
                 ham_kwargs: Optional[dict] = None, norm_cfg: Optional[dict] = None,
                 conv_cfg: Optional[dict] = None, trailing_relu: bool = False) -> None:
        super().__init__()
        if ham_type not in HAMS:
            raise ValueError(f'ham_type must be one of {tuple(HAMS)}, got {ham_type!r}')
        for name, value in (('in_channels', in_channels), ('ham_channels', ham_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        self.in_channels = in_channels
        self.ham_channels = ham_channels
        self.ham_type = ham_type
        self.trailing_relu = trailing_relu
        self.lower_bread = ConvModule(
            in_channels, ham_channels, 1, conv_cfg=conv_cfg, norm_cfg=None,
            act_cfg=dict(type='ReLU') if ham_type == 'NMF' else None)
        self.ham = HAMS[ham_type](ham_channels, **dict(ham_kwargs or {}))
        self.upper_bread = ConvModule(
            ham_channels, in_channels, 1, conv_cfg=conv_cfg, norm_cfg=norm_cfg, act_cfg=None)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'Hamburger expects a (B, {self.in_channels}, H, W) input '
                             f'({self.in_channels} channels), got shape {tuple(x.shape)} '
                             f'({x.shape[1] if x.dim() > 1 else "?"} channels)')
        out = x + self.upper_bread(self.ham(self.lower_bread(x)))
        return F.relu(out, inplace=True) if self.trailing_relu else out
