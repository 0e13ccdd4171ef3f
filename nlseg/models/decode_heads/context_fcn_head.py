"""Shared structure of the non-local family heads: mmseg's ``NLHead`` layout.

An ``FCNHead`` with ``num_convs=2`` and a context block between ``convs[0]`` and
``convs[1]``: x -> convs[0] (3x3, in_channels -> channels) -> block -> convs[1] (3x3)
-> conv_cat(cat[x, out]) when concat_input -> dropout -> 1x1 classifier.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from mmseg.models.decode_heads.fcn_head import FCNHead

__all__: list[str] = []


class ContextFCNHead(FCNHead):
    """Base of NonLocalHead, ARNLHead, NSHead, SNLHead, GSNLHead (not registered).

    Subclasses build their block after ``super().__init__`` and store it under the name in
    ``block_name`` (``nl_block`` for the NLHead drop-in, so its checkpoints load unchanged).
    """

    block_name = 'block'

    def __init__(self, **kwargs) -> None:
        num_convs = kwargs.pop('num_convs', 2)
        if num_convs != 2:
            raise ValueError(f'{type(self).__name__} has num_convs=2 (the block sits between '
                             f'convs[0] and convs[1]), got num_convs={num_convs}')
        super().__init__(num_convs=2, **kwargs)

    @property
    def context_block(self) -> nn.Module:
        return getattr(self, self.block_name)

    def _check_channels(self, x: torch.Tensor) -> None:
        expected = self.convs[0].conv.in_channels
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(f'{type(self).__name__} expects an input with {expected} channels '
                             f'(in_channels), received shape {tuple(x.shape)} '
                             f'({x.shape[1] if x.dim() > 1 else "no"} channels)')

    def forward(self, inputs):
        x = self._transform_inputs(inputs)
        self._check_channels(x)
        output = self.convs[0](x)
        output = self.context_block(output)
        output = self.convs[1](output)
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
