"""``sub_sample`` of the non-local block: mmcv's 2x2 max-pool of the keys and values."""
from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ['KeyPool2d']


class KeyPool2d(nn.MaxPool2d):
    """mmcv's 2x2 key/value sub-sampling; maps smaller than 2x2 are left as they are
    (where ``nn.MaxPool2d`` would raise), so 1x1 feature maps work with sub_sample."""

    def __init__(self) -> None:
        super().__init__(kernel_size=(2, 2))

    @staticmethod
    def output_size(height: int, width: int) -> tuple[int, int]:
        """(h, w) of the pooled map of an input of ``height`` x ``width``."""
        if height < 2 or width < 2:
            return height, width
        return height // 2, width // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] < 2 or x.shape[-1] < 2:
            return x
        return super().forward(x)
