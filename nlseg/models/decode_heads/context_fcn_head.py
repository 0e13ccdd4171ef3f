"""Shared structure of the non-local family heads: mmseg's ``NLHead`` layout.

An ``FCNHead`` with ``num_convs=2`` and a context block between ``convs[0]`` and
``convs[1]``: x -> convs[0] (3x3, in_channels -> channels) -> block -> convs[1] (3x3)
-> conv_cat(cat[x, out]) when concat_input -> dropout -> 1x1 classifier.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from mmseg.models.decode_heads.fcn_head import FCNHead

from nlseg.validation import check_real
from ..utils.head_inputs import check_decode_head_args, check_head_inputs

__all__: list[str] = []


class ContextFCNHead(FCNHead):
    """Base of NonLocalHead, ARNLHead, NSHead, SNLHead, GSNLHead (not registered).

    Subclasses build their block after ``super().__init__`` (passing
    ``zero_init_output``: True, the default, zero-initialises the block's output norm so it
    starts as the identity, as mmcv does; False keeps the norm's weight 1) and store it under
    the name in ``block_name`` (``nl_block`` for the NLHead drop-in, so its checkpoints load
    unchanged). ``init_std`` (default 0.01, mmcv's) is the std of the normal init of the
    block's embeddings g/theta/phi, passed to the block.
    The ``BaseDecodeHead`` arguments mmseg leaves unchecked are checked with clear errors, and
    the selected input is checked before any work (:func:`check_head_inputs`). The block's
    arguments (``zero_init_output`` included) are checked once, by the block.
    """

    block_name = 'block'

    def __init__(self, zero_init_output: bool = True, init_std: float = 0.01,
                 **kwargs) -> None:
        num_convs = kwargs.pop('num_convs', 2)
        if num_convs != 2:
            raise ValueError(f'{type(self).__name__} has num_convs=2 (the block sits between '
                             f'convs[0] and convs[1]), got num_convs={num_convs}')
        check_decode_head_args(kwargs)
        if kwargs.get('input_transform') == 'multiple_select':
            raise ValueError(f'{type(self).__name__} takes one feature map: input_transform '
                             f"must be None or 'resize_concat', got 'multiple_select'")
        super().__init__(num_convs=2, **kwargs)
        #: passed to the block: False opens its output norm at init (weight 1, not 0)
        self.zero_init_output = zero_init_output
        #: passed to the block: std of the normal init of its embeddings g/theta/phi
        self.init_std = check_real('init_std', init_std, low=0)

    @property
    def context_block(self) -> nn.Module:
        return getattr(self, self.block_name)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        check_head_inputs(inputs, type(self).__name__, self.in_index, self.in_channels,
                          self.input_transform)
        x = self._transform_inputs(inputs)
        output = self.convs[0](x)
        output = self.context_block(output)
        output = self.convs[1](output)
        if self.concat_input:
            output = self.conv_cat(torch.cat([x, output], dim=1))
        return self.cls_seg(output)
