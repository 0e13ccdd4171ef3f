"""Convert a checkpoint of the SNL authors' segmentation head to nlseg's ``SNLHead`` /
``GSNLHead``.

Usage::

    python tools/model_converters/snl2nlseg.py SRC DST [--w2-sign {minus,plus}]
        [--drop-unknown] [--unsafe-load]

Source: the head of repo zh460045050/SNL_ICCV2021 (``SNL-MMSeg/snl_head.py``, block from
``nls/basic.py``): an ``FCNHead(num_convs=2)`` with the spectral non-local block between
``convs[0]`` and ``convs[1]``. The block holds plain 1x1 ``nn.Conv2d`` theta/phi/g (C -> C')
and W1, W2 (W3 for gSNL) (C' -> C), and one BatchNorm on their sum:

    Y = X + bn(w_1(Z) - w_2(A Z) [+ w_3((2A - I) Z)]),  Z = g(X),
    A = D^-1/2 S D^-1/2,  S = (relu(t)^T relu(p) + its transpose) / 2.

Target: :class:`nlseg.models.decode_heads.SNLHead` (``GSNLHead`` when the source has W3),
built with the same ``in_channels``, ``channels``, ``reduction``, ``concat_input``, a BN
``norm_cfg`` and ``affinity='symmetric'``; its block computes X + norm(w1 Z + w2 A Z
[+ w3 (2A - I) Z]).

Mapping (under the head's prefix; every other key of a whole-model checkpoint is kept)::

    <block>.t|theta.weight  -> snl_block.theta.weight   (+ zero bias when the source has none)
    <block>.p|phi.weight    -> snl_block.phi.weight     (idem)
    <block>.g.weight        -> snl_block.g.weight       (idem)
    <block>.w_1|w1.weight   -> snl_block.w1.weight
    <block>.w_2|w2.weight   -> snl_block.w2.weight      NEGATED (--w2-sign minus, default)
    <block>.w_3|w3.weight   -> snl_block.w3.weight      (gSNL)
    <block>.bn|norm.*       -> snl_block.norm.*
    convs.*, conv_cat.*, conv_seg.* -> unchanged

The W2 sign: the authors' segmentation file subtracts the W2 term and their classification
file adds it; nlseg adds it, so the minus form is converted by negating W2 (exact), and
``--w2-sign plus`` copies it unchanged. Names: this project does not record the exact
attribute names of the authors' block, so the converter accepts both spellings listed above
(``t``/``theta``, ``p``/``phi``, ``w_1``/``w1``..., ``bn``/``norm``) and finds the block by
its keys whatever the head calls it (the report names it). Bugs of the authors' code that do
not touch the weights (a missing import, the in-place ``att += att.permute(0, 2, 1)``, a
hard-coded ``torch.eye(N).cuda()``) are absent from the target, which computes (A + A^T) / 2.
"""
from __future__ import annotations

import sys
from collections import OrderedDict
from typing import Mapping, Optional, Sequence

from torch import Tensor

from state_dict_conversion import (ConversionError, ConversionReport, StateDictConversion,
                                   map_fcn_head, run_converter)

__all__ = ['convert_snl', 'ALIASES', 'TARGET_BLOCK', 'W2_SIGNS']

TARGET_BLOCK = 'snl_block'
W2_SIGNS = ('minus', 'plus')
#: nlseg submodule -> the names the authors' block may use for it.
ALIASES = {
    'theta': ('t', 'theta'),
    'phi': ('p', 'phi'),
    'g': ('g',),
    'w1': ('w_1', 'w1'),
    'w2': ('w_2', 'w2'),
    'w3': ('w_3', 'w3'),
    'norm': ('bn', 'norm'),
}


def _source_name(conv: StateDictConversion, block: str, name: str) -> Optional[str]:
    """The spelling of nlseg submodule ``name`` used under ``block`` (None if absent)."""
    for alias in ALIASES[name]:
        if conv.has(f'{block}{alias}.weight'):
            return alias
    return None


def _find_blocks(conv: StateDictConversion) -> list[str]:
    """Prefixes of the SNL blocks: those holding g, theta and W1 weights."""
    blocks = []
    for prefix in conv.find_prefixes('g.weight'):
        if _source_name(conv, prefix, 'theta') and _source_name(conv, prefix, 'w1'):
            blocks.append(prefix)
    return blocks


def convert_snl(state_dict: Mapping[str, Tensor], *, w2_sign: str = 'minus',
                report: Optional[ConversionReport] = None,
                drop_unknown: bool = False) -> 'OrderedDict[str, Tensor]':
    """The state_dict of the SNL authors' segmentation head (or of their bare block) in the
    layout of nlseg's ``SNLHead``/``GSNLHead`` (or ``SpectralNonLocalBlock``).

    Args:
        state_dict: the source; a head, a bare block or a whole model (every block found
            is converted; keys outside them and their heads are kept).
        w2_sign: ``'minus'`` (the authors' segmentation code: X + bn(w_1 Z - w_2 A Z), W2
            is negated) or ``'plus'`` (their classification code: copied).
        report, drop_unknown: see :class:`~state_dict_conversion.StateDictConversion`.

    A block sitting in a head (``conv_seg.weight`` beside it) is renamed ``snl_block``; a
    bare block keeps its place. Raises :class:`ConversionError` naming the missing keys (no
    block found, a head without its FCNHead convs, a BatchNorm without its statistics) or
    the unknown ones.
    """
    if w2_sign not in W2_SIGNS:
        raise ValueError(f'w2_sign must be one of {W2_SIGNS}, got {w2_sign!r}')
    conv = StateDictConversion(state_dict, "SNL authors' SNL head",
                               "nlseg's SNLHead/GSNLHead", report)
    blocks = _find_blocks(conv)
    if not blocks:
        conv.require('<prefix><block>.g.weight, <block>.t.weight (or theta), <block>.w_1.weight '
                     '(or w1)')
    for block in blocks:
        parent = block[:-1].rpartition('.')[0]
        head = f'{parent}.' if parent else ''
        in_head = bool(block) and conv.has(f'{head}conv_seg.weight')
        if in_head:
            conv.scope(head)
            map_fcn_head(conv, head)
            target = f'{head}{TARGET_BLOCK}.'
            conv.report.note(f'block {block[:-1]} -> {target[:-1]}')
        else:
            conv.scope(block)
            target = block
        names = {name: _source_name(conv, block, name) for name in ALIASES}
        generalized = names['w3'] is not None
        conv.report.note(f'{block[:-1] or "block"}: '
                         + ('gSNL (has W3): build GSNLHead' if generalized
                            else 'SNL: build SNLHead')
                         + ", norm_cfg=dict(type='BN') (or SyncBN), affinity='symmetric'")
        if names['norm'] is None:
            raise ConversionError(f'{block[:-1] or "the block"} has no BatchNorm (bn.weight); '
                                  "the authors' block always has one")
        for name in ('theta', 'phi', 'g'):
            src = names[name]
            if src is None:
                conv.require(f'{block}{ALIASES[name][0]}.weight')
                continue
            conv.map(f'{block}{src}.weight', f'{target}{name}.weight')
            if not conv.map(f'{block}{src}.bias', f'{target}{name}.bias', required=False):
                weight = state_dict[f'{block}{src}.weight']
                conv.fill(f'{target}{name}.bias', weight.new_zeros(weight.shape[0]),
                          'the source conv has no bias: zero (exact)',
                          after=f'{block}{src}.weight')
        for name in ('w1', 'w2', 'w3'):
            src = names[name]
            if src is None:
                if name != 'w3':
                    conv.require(f'{block}{ALIASES[name][0]}.weight')
                continue
            if conv.has(f'{block}{src}.bias'):
                raise ConversionError(
                    f'{block}{src}.bias: the output convs of the source have biases, but with '
                    "a norm nlseg's block has none (the authors' convs are bias-free)")
            if name == 'w2' and w2_sign == 'minus':
                conv.map(f'{block}{src}.weight', f'{target}w2.weight', transform=lambda w: -w,
                         what="negated: the authors' segmentation block subtracts the W2 term, "
                              "nlseg's adds it")
            else:
                conv.map(f'{block}{src}.weight', f'{target}{name}.weight')
        conv.map_batch_norm(f'{block}{names["norm"]}.', f'{target}norm.')
    return conv.result(drop_unknown)


def _add_arguments(parser) -> None:
    parser.add_argument('--w2-sign', choices=W2_SIGNS, default='minus',
                        help="sign of the W2 term in the source block: 'minus' (the authors' "
                             "segmentation code, default) or 'plus' (their classification code)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_converter(convert_snl, __doc__.splitlines()[0], argv, _add_arguments,
                         lambda args: dict(w2_sign=args.w2_sign))


if __name__ == '__main__':
    sys.exit(main())
