"""Enjoy-Hamburger's code, re-implemented: repo Gsunshine/Enjoy-Hamburger.

* ``SegMMHamHead``: the mmseg-based HamNet head,
  ``seg_mm/mmseg/models/decode_heads/ham_head.py``: 3x3 squeeze and align around a
  Hamburger with ``ham_in``/``ham``/``ham_out``. The exact code of that file is not recorded
  in this project: the layout is the one its successor, mmseg's ``LightHamHead``, keeps,
  with the paper's 3x3 squeeze/align (appendix E.3); its Hamburger is mmseg's.
* ``EnjoyHamburgerV1``: the ``HamburgerV1`` block of ``seg/HamNet/hamburger``; its NMF ham is
  mmseg's ``NMF2D`` (the authors' NMF, ported), its VQ and CD hams nlseg's (they have no
  parameters: what is checked with them is the mapping of the breads).
"""
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.decode_heads.ham_head import NMF2D as MMSegNMF2D
from mmseg.models.decode_heads.ham_head import Hamburger as MMSegHamburger

from nlseg.models import CD2D, VQ2D


class SegMMHamHead(BaseDecodeHead):
    """Enjoy-Hamburger's seg_mm ``HamHead``: 3x3 squeeze (padding 1), the Hamburger with
    ``ham_in``/``ham``/``ham_out`` (the class mmseg's LightHamHead took over, used here),
    3x3 align, cls_seg."""

    def __init__(self, ham_channels=512, ham_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self.ham_channels = ham_channels
        self.squeeze = ConvModule(self.in_channels, ham_channels, 3, padding=1,
                                  conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                  act_cfg=self.act_cfg)
        self.hamburger = MMSegHamburger(ham_channels, dict(ham_kwargs or {}),
                                        norm_cfg=self.norm_cfg)
        self.align = ConvModule(ham_channels, self.channels, 3, padding=1,
                                conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg,
                                act_cfg=self.act_cfg)

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        return self.cls_seg(self.align(self.hamburger(self.squeeze(x))))


class EnjoyHamburgerV1(nn.Module):
    """Enjoy-Hamburger's ``HamburgerV1``: lower bread Sequential(Conv2d, ReLU) for NMF (a
    bare Conv2d for VQ/CD), the ham, upper bread Sequential(Conv2d(bias=False), BN), empty
    shortcut, relu(x + .). The ham: mmseg's NMF2D (the authors' NMF, ported), or nlseg's
    VQ2D/CD2D (parameter-free: what is checked is the mapping of the breads)."""

    def __init__(self, in_c, ham_type='NMF', D=16, R=4):
        super().__init__()
        if ham_type == 'NMF':
            self.lower_bread = nn.Sequential(nn.Conv2d(in_c, D, 1), nn.ReLU(inplace=True))
            self.ham = MMSegNMF2D(dict(MD_R=R))
        else:
            self.lower_bread = nn.Conv2d(in_c, D, 1)
            self.ham = {'VQ': VQ2D, 'CD': CD2D}[ham_type](D, MD_R=R)
        self.upper_bread = nn.Sequential(nn.Conv2d(D, in_c, 1, bias=False),
                                         nn.BatchNorm2d(in_c))
        self.shortcut = nn.Sequential()

    def forward(self, x):
        shortcut = self.shortcut(x)
        x = self.upper_bread(self.ham(self.lower_bread(x)))
        return F.relu(x + shortcut, inplace=True)

