"""Hamburger family of nlseg (issue 4): the Hamburger block with each ham and HamburgerHead.

The anchors ``mmseg_hamburger_block`` (mmseg's Hamburger, NMF with BPTT) and
``mmseg_lighthamhead`` live in ``anchors.py``.

Block cases reproduce the paper's Table 3 setting: d = ham_channels = 512, r = 64, K = 6
(``eval_steps=6`` too, so the eval-mode MAC count is the K = 6 one; mmseg's anchor block
runs 7 steps at inference, 6 in training). Like mmseg's block they end with the trailing
ReLU and use BN after the upper bread; the input has ``in_channels`` channels.
"""
from __future__ import annotations

from typing import Callable

import torch

NUM_CLASSES = 19
NORM = dict(type='BN', requires_grad=True)


def cases(in_channels: int, channels: int) -> dict[str, Callable[[], torch.nn.Module]]:
    from nlseg.models import Hamburger, HamburgerHead

    table3 = dict(MD_S=1, MD_R=64, train_steps=6, eval_steps=6, inv_t=100, eta=0.9,
                  rand_init=True)

    def block(ham_type: str, grad: str = 'one_step') -> Callable[[], torch.nn.Module]:
        return lambda: Hamburger(in_channels, ham_channels=512, ham_type=ham_type,
                                 ham_kwargs=dict(table3, grad=grad), norm_cfg=NORM,
                                 trailing_relu=True)

    def head(ham_type: str) -> Callable[[], torch.nn.Module]:
        return lambda: HamburgerHead(
            in_channels=in_channels, channels=channels, num_classes=NUM_CLASSES,
            norm_cfg=NORM, align_corners=False, ham_channels=512, ham_type=ham_type,
            ham_kwargs=dict(MD_R=64, train_steps=6, eval_steps=7))

    return {
        'hamburger_block_nmf': block('NMF'),
        'hamburger_block_nmf_bptt': block('NMF', 'bptt'),
        'hamburger_block_vq': block('VQ'),
        'hamburger_block_cd': block('CD'),
        'hamburger_head_nmf': head('NMF'),
        'hamburger_head_vq': head('VQ'),
        'hamburger_head_cd': head('CD'),
    }
