"""mmseg 1.2.2's other context heads, at the benchmark's width, with mmseg's base settings.

Every head takes ``in_channels`` / ``channels`` of the run (the anchors' width, where
mmseg's R-50-D8 configs have 2048 / 512) and otherwise the settings of mmseg's
``configs/_base_/models/<head>_r50-d8.py`` (dropout and loss do not change the cost), kept
as they are there, also at ``--channels 128``: DNL reduction 2, scaled embedded Gaussian;
GC ratio 1/4, attention pooling, channel add; CC recurrence 2; EMA ema_channels 512,
64 bases, 3 stages (its base has channels 256: here ``channels``); ISA isa_channels 256,
down factor 8 x 8; OCR ocr_channels 256; ANN project_channels 256, query scale 1, key pool
scales 1, 3, 6, 8; PSP pool scales 1, 2, 3, 6; ASPP dilations 1, 12, 24, 36.
DAHead (pam_channels 64) is ``mmseg_dahead`` of ``anchors.py``.

Two heads take more than one feature map, which a wrapper makes from the one input ``x``:

* ANNHead fuses a stage-3 map (1024 channels in mmseg's config, half the stage-4 map's) with
  the stage-4 map: ``in_channels=[in_channels // 2, in_channels]``, fed
  ``[x[:, :in_channels // 2], x]`` (the first half of the channels as the stage-3 map).
* OCRHead is a cascade head that needs the previous head's logits (``prev_output``): the
  case is mmseg's OCRNet decode cascade, its FCNHead (num_convs 1, concat_input False,
  channels 256, on the stand-in stage-3 map ``x[:, :in_channels // 2]``) then OCRHead on
  ``x`` with the FCN's logits; params, MACs, time and memory include the FCN.

CCHead: mmcv 2.1.0's ``CrissCrossAttention`` is pure PyTorch (einsum; the CUDA op was
dropped in mmcv 1.3.13), so it runs on the CPU. Where mmcv's ops are not importable mmseg
sets it to None and CCHead raises; the case then raises a clear error, which the benchmark
writes into the row instead of a figure.

PSPHead and ASPPHead pool one branch to 1 x 1, whose BN cannot train on the benchmark's one
image: that BN stays in eval mode in training (``PooledBNEvalCase``).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

NUM_CLASSES = 19
NORM = dict(type='BN', requires_grad=True)


class ANNCase(nn.Module):
    """ANNHead on ``[x[:, :C // 2], x]`` (stand-in stage-3 and stage-4 maps)."""

    def __init__(self, head: nn.Module, low_channels: int) -> None:
        super().__init__()
        self.head, self.low_channels = head, low_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head([x[:, :self.low_channels], x])


class OCRCase(nn.Module):
    """mmseg's OCRNet cascade: FCNHead on the stand-in stage-3 map, then OCRHead on ``x``
    with the FCN's logits as ``prev_output``."""

    def __init__(self, fcn: nn.Module, ocr: nn.Module, low_channels: int) -> None:
        super().__init__()
        self.fcn, self.ocr, self.low_channels = fcn, ocr, low_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prev_output = self.fcn([x[:, :self.low_channels]])
        return self.ocr([x], prev_output)


class PooledBNEvalCase(nn.Module):
    """A head whose branch on a globally pooled 1 x 1 map (PSP's scale 1, ASPP's image
    pool) keeps its BN in eval mode: batch-1 training cannot normalise one value per
    channel. mmseg trains these heads with batches of several images; the BN on a 1 x 1 map
    costs nothing either way."""

    def __init__(self, head: nn.Module, pooled: nn.Module) -> None:
        super().__init__()
        self.head, self.pooled = head, pooled

    def train(self, mode: bool = True) -> 'PooledBNEvalCase':
        super().train(mode)
        for module in self.pooled.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head([x])


def _cc_head(common: dict) -> nn.Module:
    from mmseg.models.decode_heads import cc_head
    if cc_head.CrissCrossAttention is None:
        raise RuntimeError('CCHead not available: mmcv.ops.CrissCrossAttention could not be '
                           'imported (mmcv without its ops)')
    return cc_head.CCHead(recurrence=2, **common)


def cases(in_channels: int, channels: int) -> dict[str, Callable[[], torch.nn.Module]]:
    from mmseg.models.decode_heads import (ANNHead, ASPPHead, DNLHead, EMAHead, FCNHead,
                                           GCHead, ISAHead, OCRHead, PSPHead)

    common = dict(in_channels=in_channels, channels=channels, num_classes=NUM_CLASSES,
                  norm_cfg=NORM, align_corners=False)
    low = in_channels // 2

    def ann() -> nn.Module:
        head = ANNHead(project_channels=256, query_scales=(1, ), key_pool_scales=(1, 3, 6, 8),
                       in_index=[0, 1], **dict(common, in_channels=[low, in_channels]))
        return ANNCase(head, low)

    def ocr() -> nn.Module:
        fcn = FCNHead(num_convs=1, concat_input=False,
                      **dict(common, in_channels=low, channels=256))
        return OCRCase(fcn, OCRHead(ocr_channels=256, **common), low)

    def psp() -> nn.Module:
        head = PSPHead(pool_scales=(1, 2, 3, 6), **common)
        return PooledBNEvalCase(head, head.psp_modules[0])

    def aspp() -> nn.Module:
        head = ASPPHead(dilations=(1, 12, 24, 36), **common)
        return PooledBNEvalCase(head, head.image_pool)

    return {
        'mmseg_dnlhead': lambda: DNLHead(reduction=2, use_scale=True,
                                         mode='embedded_gaussian', **common),
        'mmseg_gchead': lambda: GCHead(ratio=1 / 4., pooling_type='att',
                                       fusion_types=('channel_add', ), **common),
        'mmseg_cchead': lambda: _cc_head(common),
        'mmseg_emahead': lambda: EMAHead(ema_channels=512, num_bases=64, num_stages=3,
                                         momentum=0.1, **common),
        'mmseg_isahead': lambda: ISAHead(isa_channels=256, down_factor=(8, 8), **common),
        'mmseg_ocrhead': ocr,
        'mmseg_annhead': ann,
        'mmseg_psphead': psp,
        'mmseg_aspphead': aspp,
    }
