"""HamburgerHead: HamNet's decode head (Geng et al., ICLR 2021, appendix E.3).

kxk squeeze ConvModule (C_in -> ham_channels) -> Hamburger -> kxk align ConvModule
(ham_channels -> channels) -> dropout -> 1x1 classifier, k = ``kernel_size``: 3 in HamNet's
head (the paper's recipe, the default), 1 in mmseg's ``LightHamHead`` (SegNeXt). With a list
``in_index`` the selected levels are resized to the first one and concatenated, as
``LightHamHead`` does.

``HamburgerHead(kernel_size=1, trailing_relu=True, ham_kwargs=dict(..., grad='bptt'))`` is
``LightHamHead``'s forward and gradient (tested against it in float64); on the demo's key task
that form reads the long-range key where HamNet's form does not (docs/demo_diagnosis.md).
"""
from __future__ import annotations

from typing import Optional

import torch
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from mmseg.registry import MODELS
from torch import Tensor

from ..blocks.hamburger import Hamburger
from nlseg.validation import check_int
from ..utils.head_inputs import check_decode_head_args, check_head_inputs

__all__ = ['HamburgerHead']


@MODELS.register_module()
class HamburgerHead(BaseDecodeHead):
    """Hamburger decode head (HamNet).

    Args:
        ham_channels: channels d of the Hamburger block (paper: 512).
        ham_type: ``'NMF'`` (default), ``'VQ'`` or ``'CD'``.
        ham_kwargs: arguments of the ham (``MD_S``, ``MD_R``, ``train_steps``,
            ``eval_steps``, ``inv_t``, ``rand_init``, ``bases_init``, ``grad``, ``eval_seed``,
            ``beta``...).
        trailing_relu: ReLU after the Hamburger's skip sum (public implementations).
        low_rank_upper: deprecated alias of ``impl`` (True: ``'auto'``, False: ``'dense'``).
        impl: ``'auto'`` | ``'dense'`` | ``'efficient'``: apply the Hamburger's upper bread
            and BN to the ham's factors (exact; see :class:`~nlseg.models.blocks.Hamburger`);
            ``'dense'`` always forms the reconstruction.
        lower_bread, upper_bread: keep the Hamburger's breads (False: the ablations of the
            paper's Table 2; the head's squeeze and align convs stay).
        kernel_size: odd kernel size of the squeeze and align convs (padding
            ``kernel_size // 2``): 3 is HamNet's head, 1 is ``LightHamHead``'s.
        **kwargs: ``BaseDecodeHead`` arguments (``in_channels``, ``channels``,
            ``num_classes``, ``in_index``, ``norm_cfg``...). A list ``in_index`` selects
            several levels (``input_transform`` defaults to ``'multiple_select'``) that are
            resized to the first level and concatenated.

    The head checks its own arguments (``ham_channels``, ``kernel_size``, the
    ``BaseDecodeHead`` ones); ``ham_type``, ``ham_kwargs``, ``trailing_relu``, ``impl``,
    ``low_rank_upper``, ``lower_bread`` and ``upper_bread`` go to :class:`Hamburger` unchanged,
    which checks them (its errors name the argument).
    """

    def __init__(self, ham_channels: int = 512, ham_type: str = 'NMF',
                 ham_kwargs: Optional[dict] = None, trailing_relu: bool = False,
                 low_rank_upper: Optional[bool] = None, impl: str = 'auto',
                 lower_bread: bool = True, upper_bread: bool = True, kernel_size: int = 3,
                 **kwargs) -> None:
        check_int('ham_channels', ham_channels)
        check_int('kernel_size', kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f'kernel_size must be odd (the squeeze and align convs keep the '
                             f'map size with padding kernel_size // 2), got {kernel_size}')
        if isinstance(kwargs.get('in_index'), (list, tuple)):
            kwargs.setdefault('input_transform', 'multiple_select')
        check_decode_head_args(kwargs)
        super().__init__(**kwargs)
        in_channels = (sum(self.in_channels) if isinstance(self.in_channels, (list, tuple))
                       else self.in_channels)
        self.ham_channels = ham_channels
        self.kernel_size = kernel_size
        self.squeeze = ConvModule(
            in_channels, ham_channels, kernel_size, padding=kernel_size // 2,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)
        self.hamburger = Hamburger(
            ham_channels, ham_channels, ham_type=ham_type, ham_kwargs=ham_kwargs,
            norm_cfg=self.norm_cfg, conv_cfg=self.conv_cfg, trailing_relu=trailing_relu,
            low_rank_upper=low_rank_upper, impl=impl, lower_bread=lower_bread,
            upper_bread=upper_bread)
        self.align = ConvModule(
            ham_channels, self.channels, kernel_size, padding=kernel_size // 2,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg, act_cfg=self.act_cfg)

    @property
    def context_block(self) -> Hamburger:
        """The head's context module (read-only): its :class:`Hamburger` block, the name that
        every nlseg context head gives its context module."""
        return self.hamburger

    def _forward_feature(self, inputs: list[Tensor]) -> Tensor:
        check_head_inputs(inputs, type(self).__name__, self.in_index, self.in_channels,
                          self.input_transform)
        x = self._transform_inputs(inputs)
        if isinstance(x, (list, tuple)):
            x = torch.cat([
                resize(level, size=x[0].shape[2:], mode='bilinear',
                       align_corners=self.align_corners) for level in x], dim=1)
        return self.align(self.hamburger(self.squeeze(x)))

    def forward(self, inputs: list[Tensor]) -> Tensor:
        return self.cls_seg(self._forward_feature(inputs))
