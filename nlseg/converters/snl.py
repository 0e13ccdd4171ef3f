"""Convert a checkpoint of the SNL authors' segmentation head to nlseg's ``SNLHead`` /
``GSNLHead``.

Usage::

    python tools/model_converters/snl2nlseg.py SRC DST [--w2-sign {minus,plus}]
        [--drop-unknown] [--unsafe-load]

Source: the head of repo zh460045050/SNL_ICCV2021 (``SNL-MMSeg/snl_head.py``, block from
``nls/``): an ``FCNHead(num_convs=2)`` with an SNL stage between ``convs[0]`` and
``convs[1]``. The stage holds bias-free 1x1 ``nn.Conv2d`` ``t`` and ``p`` (C -> C', the
affinity, computed once from the stage input) and ``stage_num`` units in a ModuleList, each
with bias-free ``g`` (C -> C'), ``w_1``, ``w_2`` (``w_3`` for gSNL) (C' -> C) and a BatchNorm
``bn``. Unit k maps Z to

    Z + relu(bn(w_1 g(Z) -/+ w_2 A g(Z) [+ w_3 (2A - I) g(Z)])),
    A = D^-1/2 S D^-1/2,  S = (relu(t)^T relu(p) + its transpose) / 2.

Target: :class:`nlseg.models.decode_heads.SNLHead` (``GSNLHead`` when the units have W3)
built with the same ``in_channels``, ``channels``, ``reduction``, ``concat_input``,
``stage_num``, a BN ``norm_cfg``, ``affinity='symmetric'``, ``output_relu=True`` and
``zero_init_output=False`` (the report says which head and ``stage_num``).

Mapping (under the head's prefix; every other key of a whole-model checkpoint is kept)::

    <block>.t|theta.weight        -> snl_block.theta.weight  (+ zero bias when none: exact)
    <block>.p|phi.weight          -> snl_block.phi.weight    (idem)
    <block>.<list>.k.g.weight     -> snl_block.g.weight      (stage_num 1; + zero bias)
                                     snl_block.units.k.g.weight (stage_num > 1)
    <block>.<list>.k.w_1.weight   -> ...w1.weight
    <block>.<list>.k.w_2.weight   -> ...w2.weight  NEGATED with --w2-sign minus (default)
    <block>.<list>.k.w_3.weight   -> ...w3.weight  (gSNL)
    <block>.<list>.k.bn.*         -> ...norm.*
    convs.*, conv_cat.*, conv_seg.* -> unchanged

The W2 sign: the authors' segmentation file subtracts the W2 term, their classification
file adds it, nlseg adds it; so the minus form is converted by negating W2 (exact) and
``--w2-sign plus`` copies it. Names: the exact attribute names of the authors' code are not
all recorded in this project, so the converter accepts the spellings ``t``/``theta``,
``p``/``phi``, ``w_1``/``w1`` (and w2, w3), ``bn``/``norm``, a unit list named ``layers``,
``stages`` or ``units``, and a single unit stored flat beside ``t``/``p``; it finds the block
by its keys whatever the head calls it (the report names it). A bare stage converts to
:class:`~nlseg.models.blocks.SpectralNonLocalBlock`'s layout. Bugs of the authors' code that
do not touch the weights (a missing import, the in-place ``att += att.permute(0, 2, 1)``, a
hard-coded ``torch.eye(N).cuda()``) are absent from nlseg's block, which computes
(A + A^T) / 2 out of place.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional, Sequence

from torch import Tensor

from .errors import ConversionError
from .state_dict import ConversionReport, StateDictConversion, map_fcn_head, run_converter

__all__ = ['convert_snl', 'ALIASES', 'UNIT_LISTS', 'TARGET_BLOCK', 'W2_SIGNS']

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
#: names the authors' stage may give its ModuleList of units.
UNIT_LISTS = ('layers', 'stages', 'units')


def _source_name(conv: StateDictConversion, prefix: str, name: str) -> Optional[str]:
    """The spelling of nlseg submodule ``name`` used under ``prefix`` (None if absent)."""
    for alias in ALIASES[name]:
        if conv.has(f'{prefix}{alias}.weight'):
            return alias
    return None


def _units(conv: StateDictConversion, block: str) -> list[str]:
    """Prefixes of the units of the stage at ``block``: the block itself when its one unit
    is stored flat, else ``<list>.0.``, ``<list>.1.``, ... (empty when neither)."""
    if _source_name(conv, block, 'g'):
        return [block]
    for name in UNIT_LISTS:
        units = []
        while _source_name(conv, f'{block}{name}.{len(units)}.', 'g'):
            units.append(f'{block}{name}.{len(units)}.')
        if units:
            return units
    return []


def _find_blocks(conv: StateDictConversion) -> list[str]:
    """Prefixes of the SNL stages: those holding theta and phi weights and units."""
    blocks = []
    for alias in ALIASES['theta']:
        for prefix in conv.find_prefixes(f'{alias}.weight'):
            if _source_name(conv, prefix, 'phi') and _units(conv, prefix) \
                    and prefix not in blocks:
                blocks.append(prefix)
    return blocks


def _map_unit(conv: StateDictConversion, unit: str, target: str, w2_sign: str) -> bool:
    """Map one unit's g, w1, w2, (w3), norm; returns whether it has w3."""
    g = _source_name(conv, unit, 'g')
    _map_conv_with_bias(conv, f'{unit}{g}.', f'{target}g.')
    for name in ('w1', 'w2', 'w3'):
        src = _source_name(conv, unit, name)
        if src is None:
            if name != 'w3':
                conv.require(f'{unit}{ALIASES[name][0]}.weight')
            continue
        if conv.has(f'{unit}{src}.bias'):
            raise ConversionError(
                f'{unit}{src}.bias: the output convs of the source have biases, but next to '
                "a norm nlseg's have none (the authors' convs are bias-free)")
        if name == 'w2' and w2_sign == 'minus':
            conv.map(f'{unit}{src}.weight', f'{target}w2.weight', transform=lambda w: -w,
                     what="negated: the authors' segmentation block subtracts the W2 term, "
                          "nlseg's adds it")
        else:
            conv.map(f'{unit}{src}.weight', f'{target}{name}.weight')
    norm = _source_name(conv, unit, 'norm')
    if norm is None:
        conv.require(f'{unit}bn.weight')
    else:
        conv.map_batch_norm(f'{unit}{norm}.', f'{target}norm.')
    return _source_name(conv, unit, 'w3') is not None


def _map_conv_with_bias(conv: StateDictConversion, src: str, dst: str) -> None:
    """A 1x1 conv's weight and bias; a zero bias when the source conv has none (nlseg's
    theta, phi and g have one)."""
    conv.map(f'{src}weight', f'{dst}weight')
    if not conv.map(f'{src}bias', f'{dst}bias', required=False):
        weight = conv.state_dict[f'{src}weight']
        conv.fill(f'{dst}bias', weight.new_zeros(weight.shape[0]),
                  'the source conv has no bias: zero (exact)', after=f'{src}weight')


def convert_snl(state_dict: Mapping[str, Tensor], *, w2_sign: str = 'minus',
                report: Optional[ConversionReport] = None,
                drop_unknown: bool = False) -> 'OrderedDict[str, Tensor]':
    """The state_dict of the SNL authors' segmentation head (or of their bare stage) in the
    layout of nlseg's ``SNLHead``/``GSNLHead`` (or ``SpectralNonLocalBlock``).

    Args:
        state_dict: the source; a head, a bare stage or a whole model (every stage found
            is converted; keys outside the stages and their heads are kept).
        w2_sign: ``'minus'`` (the authors' segmentation code subtracts the W2 term: W2 is
            negated) or ``'plus'`` (their classification code: copied).
        report, drop_unknown: see :class:`~nlseg.converters.StateDictConversion`.

    A stage sitting in a head (``conv_seg.weight`` beside it) is renamed ``snl_block``; a
    bare stage keeps its place. Raises :class:`ConversionError` naming the missing keys (no
    stage found, a head without its FCNHead convs, a unit without W2 or BatchNorm
    statistics) or the unknown ones.
    """
    if w2_sign not in W2_SIGNS:
        raise ValueError(f'w2_sign must be one of {W2_SIGNS}, got {w2_sign!r}')
    conv = StateDictConversion(state_dict, "SNL authors' SNL head",
                               "nlseg's SNLHead/GSNLHead", report)
    blocks = _find_blocks(conv)
    if not blocks:
        conv.require('<prefix><block>.t.weight (or theta), <block>.p.weight (or phi), '
                     f'<block>.<{"|".join(UNIT_LISTS)}>.0.g.weight')
    for block in blocks:
        parent = block[:-1].rpartition('.')[0]
        head = f'{parent}.' if parent else ''
        if block and conv.has(f'{head}conv_seg.weight'):
            conv.scope(head)
            map_fcn_head(conv, head)
            target = f'{head}{TARGET_BLOCK}.'
            if target != block:
                conv.report.note(f'block {block[:-1]} -> {target[:-1]}')
        else:
            conv.scope(block)
            target = block
        for name in ('theta', 'phi'):
            src = _source_name(conv, block, name)
            _map_conv_with_bias(conv, f'{block}{src}.', f'{target}{name}.')
        units = _units(conv, block)
        stage_num = len(units)
        generalized = [_map_unit(conv, unit, target if stage_num == 1 else
                                 f'{target}units.{k}.', w2_sign)
                       for k, unit in enumerate(units)]
        if any(generalized) != all(generalized):
            raise ConversionError(f'{block[:-1] or "the stage"}: some units have W3 and some '
                                  'do not; nlseg builds every unit alike')
        head_class = 'GSNLHead' if generalized[0] else 'SNLHead'
        conv.report.note(f'{block[:-1] or "stage"}: build {head_class} (or '
                         f"SpectralNonLocalBlock(generalized={generalized[0]})) with "
                         f'stage_num={stage_num}, output_relu=True, zero_init_output=False, '
                         "norm_cfg=dict(type='BN') (or SyncBN), affinity='symmetric'")
    return conv.result(drop_unknown)


def _add_arguments(parser) -> None:
    parser.add_argument('--w2-sign', choices=W2_SIGNS, default='minus',
                        help="sign of the W2 term in the source units: 'minus' (the authors' "
                             "segmentation code, default) or 'plus' (their classification code)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_converter(convert_snl, __doc__, argv, _add_arguments,
                         lambda args: dict(w2_sign=args.w2_sign))

