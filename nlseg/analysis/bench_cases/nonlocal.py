"""Non-local family heads of nlseg (issue 3), all with impl='auto' (the memory-lean path).

The anchor ``mmseg_nlhead`` (mmseg's NLHead) lives in ``anchors.py``.
"""
from __future__ import annotations

from typing import Callable

import torch

NUM_CLASSES = 19
NORM = dict(type='BN', requires_grad=True)


def cases(in_channels: int, channels: int) -> dict[str, Callable[[], torch.nn.Module]]:
    from nlseg.models import ARNLHead, GSNLHead, NonLocalHead, NSHead, SNLHead

    common = dict(in_channels=in_channels, channels=channels, num_classes=NUM_CLASSES,
                  norm_cfg=NORM, align_corners=False, impl='auto')

    def nl(mode: str) -> Callable[[], torch.nn.Module]:
        return lambda: NonLocalHead(reduction=2, use_scale=True, mode=mode, **common)

    return {
        'nonlocal_embedded_gaussian': nl('embedded_gaussian'),
        'nonlocal_dot_product': nl('dot_product'),
        'nonlocal_gaussian': nl('gaussian'),
        'nonlocal_concatenation': nl('concatenation'),
        'arnl': lambda: ARNLHead(reduction=2, use_scale=False, mode='embedded_gaussian',
                                 **common),
        'ns': lambda: NSHead(reduction=2, use_scale=True, mode='embedded_gaussian',
                             num_units=2, **common),
        'snl': lambda: SNLHead(reduction=2, affinity='symmetric', **common),
        'gsnl': lambda: GSNLHead(reduction=2, affinity='symmetric', **common),
    }
