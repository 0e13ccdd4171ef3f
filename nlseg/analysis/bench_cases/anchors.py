"""mmseg's own heads as anchors of the head benchmark (every ratio is to mmseg_nlhead)."""
from __future__ import annotations

from typing import Callable

import torch

NUM_CLASSES = 19
NORM = dict(type='BN', requires_grad=True)


def cases(in_channels: int, channels: int) -> dict[str, Callable[[], torch.nn.Module]]:
    from mmseg.models.decode_heads import DAHead, FCNHead, LightHamHead, NLHead
    from mmseg.models.decode_heads.ham_head import Hamburger

    common = dict(in_channels=in_channels, channels=channels, num_classes=NUM_CLASSES,
                  norm_cfg=NORM, align_corners=False)
    # mmseg 1.2.2's matrix decomposition takes no ``eta``
    ham_kwargs = dict(MD_S=1, MD_R=64, train_steps=6, eval_steps=7, inv_t=100, rand_init=True)
    return {
        'mmseg_fcnhead': lambda: FCNHead(num_convs=2, concat_input=True, **common),
        'mmseg_nlhead': lambda: NLHead(reduction=2, use_scale=True, mode='embedded_gaussian',
                                       **common),
        'mmseg_dahead': lambda: DAHead(pam_channels=64, **common),
        'mmseg_lighthamhead': lambda: LightHamHead(
            in_index=[0], ham_channels=512, ham_kwargs=ham_kwargs,
            **dict(common, in_channels=[in_channels])),
        # mmseg's Hamburger block alone (its input has ham_channels channels)
        'mmseg_hamburger_block': lambda: Hamburger(ham_channels=in_channels,
                                                   ham_kwargs=ham_kwargs, norm_cfg=NORM),
    }
