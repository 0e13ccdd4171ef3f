"""CrossEntropyLoss with class weights on labels that contain ``ignore_index``.

mmseg 1.2.2's ``CrossEntropyLoss(class_weight=...)`` computes the mean's normaliser as
``torch.stack([class_weight[cls] for cls in label])``, which indexes the class weights with
every label value, the ignored ones (255) included: on any batch with an ignored pixel it
raises ``IndexError: index 255 is out of bounds`` (found training the CamVid recipes, whose
SegNet class weights meet CamVid's void pixels, on the published data). This loss gives that
normaliser explicitly, as PyTorch's weighted ``cross_entropy`` defines the mean: the sum of
the class weights of the pixels that are not ignored,

    loss = sum_i w[y_i] CE_i / sum_{i: y_i != ignore} w[y_i],

and is otherwise mmseg's ``CrossEntropyLoss`` (same arguments, same loss name, same value
without ignored pixels).
"""
from __future__ import annotations

from typing import Optional

import torch
from mmseg.models.losses import CrossEntropyLoss
from mmseg.registry import MODELS

__all__ = ['ClassWeightedCrossEntropyLoss']


@MODELS.register_module()
class ClassWeightedCrossEntropyLoss(CrossEntropyLoss):
    """mmseg's ``CrossEntropyLoss`` whose class-weighted mean skips ignored pixels.

    Args: those of mmseg's ``CrossEntropyLoss``; ``class_weight`` is required (without it
    use mmseg's loss). Softmax cross-entropy only (``use_sigmoid`` and ``use_mask`` False).
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.class_weight is None:
            raise ValueError('ClassWeightedCrossEntropyLoss needs class_weight (a list of one '
                             'weight per class); without it use CrossEntropyLoss')
        if self.use_sigmoid or self.use_mask:
            raise ValueError('ClassWeightedCrossEntropyLoss is the softmax cross-entropy: '
                             'use_sigmoid and use_mask must be False')

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor,
                weight: Optional[torch.Tensor] = None, avg_factor=None,
                reduction_override: Optional[str] = None, ignore_index: int = -100,
                **kwargs) -> torch.Tensor:
        reduction = reduction_override if reduction_override else self.reduction
        if avg_factor is None and reduction == 'mean':
            class_weight = cls_score.new_tensor(self.class_weight)
            kept = label != ignore_index
            avg_factor = (class_weight[torch.where(kept, label, 0)] * kept).sum()
        return super().forward(cls_score, label, weight=weight, avg_factor=avg_factor,
                               reduction_override=reduction_override,
                               ignore_index=ignore_index, **kwargs)
