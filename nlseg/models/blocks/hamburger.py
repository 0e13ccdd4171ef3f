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

from ..utils.input_checks import check_bool, check_choice, check_feature_map, check_int, \
    check_optional_dict
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
        check_choice('ham_type', ham_type, tuple(HAMS))
        check_int('in_channels', in_channels)
        check_int('ham_channels', ham_channels)
        check_optional_dict('ham_kwargs', ham_kwargs)
        check_optional_dict('norm_cfg', norm_cfg)
        check_optional_dict('conv_cfg', conv_cfg)
        check_bool('trailing_relu', trailing_relu)
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
        """Y = X + norm(W_u M(W_l X)); a non-4-D, non-floating or empty (B = 0) input, or one
        without ``in_channels`` channels, raises before any work."""
        check_feature_map(x, 'Hamburger')
        if x.shape[1] != self.in_channels:
            raise ValueError(f'Hamburger expects a (B, {self.in_channels}, H, W) input '
                             f'({self.in_channels} channels), got shape {tuple(x.shape)} '
                             f'({x.shape[1]} channels)')
        out = x + self.upper_bread(self.ham(self.lower_bread(x)))
        return F.relu(out, inplace=True) if self.trailing_relu else out
