"""Convert a checkpoint of the ARNLB authors' ``ARNLHead`` to nlseg's ``ARNLHead``.

Usage::

    python tools/model_converters/arnlb2nlseg.py SRC DST [--drop-unknown] [--unsafe-load]

Source: the head of repo sunhuichao/ARNLB (``mmseg/models/decode_heads/arnl_head.py``), an
``FCNHead(num_convs=2)`` whose block ``NewNonLocal2d`` sits under the misspelt attribute
``non_blocak``. The block keeps mmcv ``NonLocal2d``'s submodules (``g``, ``theta``, ``phi``
and ``conv_out``, ConvModules) and adds the 3x3 conv C -> 1 that gives the per-position
inverse temperature lambda. Target: :class:`nlseg.models.decode_heads.ARNLHead` (block
``nl_block``, lambda conv ``lambda_x``), built with the same ``in_channels``, ``channels``,
``norm_cfg``, ``concat_input`` and ``lambda_act=None`` (the authors use lambda raw).

Mapping (under the head's prefix, e.g. ``decode_head.``; every other key of a whole-model
checkpoint is kept unchanged)::

    non_blocak.{g,theta,phi}.conv.*   -> nl_block.{g,theta,phi}.conv.*
    non_blocak.conv_out.*             -> nl_block.conv_out.*       (conv and its norm)
    non_blocak.<lambda conv>.weight   -> nl_block.lambda_x.weight  (shape (1, C, 3, 3))
    non_blocak.<lambda conv>.bias     -> nl_block.lambda_x.bias    (zero when absent)
    convs.*, conv_cat.*, conv_seg.*   -> unchanged

The attribute name of the authors' lambda conv is not recorded in this project, so the
converter does not rely on it: the lambda conv is the one module under ``non_blocak`` other
than g/theta/phi/conv_out whose weight has shape (1, C, 3, 3) (a plain ``nn.Conv2d``, or a
ConvModule's ``conv``); its source name is listed in the report. A source without theta and
phi is a ``mode='gaussian'`` block (the report says so). The authors' forward has two bugs
that do not touch the weights (phi permuted before the matmul, a hard-coded ``.cuda()``); the
converted head computes the block as it is meant to be: A = softmax_j(lambda_i theta_i .
phi_j), Y = X + conv_out(A g).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional, Sequence

from torch import Tensor

from .errors import ConversionError
from .state_dict import (ConversionReport, StateDictConversion, describe_keys, map_fcn_head,
                         run_converter)

__all__ = ['convert_arnlb', 'SOURCE_BLOCK', 'TARGET_BLOCK']

SOURCE_BLOCK = 'non_blocak'  # (sic) the authors' attribute name
TARGET_BLOCK = 'nl_block'
NL_SUBMODULES = ('g', 'theta', 'phi', 'conv_out')


def _lambda_conv(conv: StateDictConversion, block: str, in_channels: int) -> Optional[str]:
    """Prefix (under ``block``) of the lambda conv's weight: the one (1, C, 3, 3) weight
    outside g/theta/phi/conv_out; None when there is none (recorded as missing)."""
    known = tuple(f'{block}{name}.' for name in NL_SUBMODULES)
    candidates = []
    for key in conv.keys_under(block):
        if key.startswith(known) or not key.endswith('weight'):
            continue
        weight = conv.state_dict[key]
        if weight.dim() == 4 and tuple(weight.shape) == (1, in_channels, 3, 3):
            candidates.append(key[:-len('weight')])
    if len(candidates) > 1:
        raise ConversionError(f'{block[:-1]} holds several (1, {in_channels}, 3, 3) conv '
                              f'weights, so the lambda conv is ambiguous: '
                              f'{describe_keys([c + "weight" for c in candidates])}')
    if not candidates:
        conv.require(f'{block}<lambda conv>.weight (shape (1, {in_channels}, 3, 3))')
        return None
    return candidates[0]


def convert_arnlb(state_dict: Mapping[str, Tensor], *, report: Optional[ConversionReport] = None,
                  drop_unknown: bool = False) -> 'OrderedDict[str, Tensor]':
    """The state_dict of the ARNLB authors' ``ARNLHead`` (alone, or inside a model: every
    head found is converted, other keys are kept) in nlseg ``ARNLHead``'s layout.

    Raises :class:`ConversionError` naming the missing keys when no such head is found or a
    head lacks part of its layout, and naming the unknown keys inside a head unless
    ``drop_unknown``. ``report`` (a :class:`ConversionReport`) is filled when given.
    """
    conv = StateDictConversion(state_dict, "ARNLB authors' ARNLHead", "nlseg's ARNLHead",
                               report)
    heads = conv.find_prefixes(f'{SOURCE_BLOCK}.g.conv.weight')
    if not heads:
        conv.require(f'<prefix>{SOURCE_BLOCK}.g.conv.weight')
    for head in heads:
        conv.scope(head)
        block, target = f'{head}{SOURCE_BLOCK}.', f'{head}{TARGET_BLOCK}.'
        map_fcn_head(conv, head)
        conv.map_tree(f'{block}g.', f'{target}g.', required=('conv.weight',))
        conv.map_tree(f'{block}conv_out.', f'{target}conv_out.', required=('conv.weight',))
        has_theta, has_phi = conv.has(f'{block}theta.conv.weight'), \
            conv.has(f'{block}phi.conv.weight')
        if has_theta or has_phi:
            conv.map_tree(f'{block}theta.', f'{target}theta.', required=('conv.weight',))
            conv.map_tree(f'{block}phi.', f'{target}phi.', required=('conv.weight',))
        else:
            conv.report.note(f"{block[:-1]} has no theta/phi: a mode='gaussian' block; build "
                             "the target with mode='gaussian'")
        in_channels = state_dict[f'{block}g.conv.weight'].shape[1]
        lam = _lambda_conv(conv, block, in_channels)
        if lam is None:
            continue
        conv.report.note(f'lambda conv of {block[:-1]}: {lam}weight -> {target}lambda_x.weight')
        conv.map(f'{lam}weight', f'{target}lambda_x.weight')
        if not conv.map(f'{lam}bias', f'{target}lambda_x.bias', required=False):
            weight = state_dict[f'{lam}weight']
            conv.fill(f'{target}lambda_x.bias', weight.new_zeros(1),
                      'the source lambda conv has no bias: zero (exact)', after=f'{lam}weight')
    return conv.result(drop_unknown)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_converter(convert_arnlb, __doc__, argv)

