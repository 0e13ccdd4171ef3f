"""Convert Enjoy-Hamburger ``HamburgerV1`` blocks to nlseg's ``Hamburger`` block.

Usage::

    python tools/model_converters/hamburger_v1_2nlseg.py SRC DST [--drop-unknown]
        [--unsafe-load]

Source: ``HamburgerV1`` of repo Gsunshine/Enjoy-Hamburger (``seg/HamNet/hamburger``), in
a HamNet checkpoint or alone::

    lower_bread = Sequential(Conv2d(C, D, 1), ReLU)   for NMF  (keys lower_bread.0.*)
                  Conv2d(C, D, 1)                     for VQ / CD (keys lower_bread.*)
    ham         = NMF2D / VQ2D / CD2D                 (no parameters; ham.bases when the
                                                       bases are fixed, RAND_INIT False)
    upper_bread = Sequential(Conv2d(D, C, 1, bias=False), BatchNorm2d(C))
    forward: relu(x + upper_bread(ham(lower_bread(x))))

Target: :class:`nlseg.models.blocks.Hamburger` ``(C, D, ham_type=..., norm_cfg=dict(
type='BN'), trailing_relu=True, ham_kwargs=...)`` with the source's MD_S/MD_R/steps (and
``inv_t``, ``beta`` for VQ/CD)::

    lower_bread.0.{weight,bias} | lower_bread.{weight,bias} -> lower_bread.conv.{weight,bias}
    upper_bread.0.weight                                    -> upper_bread.conv.weight
    upper_bread.1.*                                         -> upper_bread.bn.*
    ham.bases                                               -> ham.bases (rand_init=False)

Every block found is converted where it sits (``hamburger.``, ``module.hamburger.`` or no
prefix); all other keys (backbone, HamNet's squeeze/align) are kept unchanged. The state_dict
does not say which ham was trained beyond NMF (ReLU in the lower bread: a ``Sequential``)
versus VQ/CD (a bare conv); the report says which, and the target must be built with it.
The BatchNorm keys are named ``bn`` as mmcv's ConvModule names a BN or SyncBN layer.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional, Sequence

from torch import Tensor

from .state_dict import ConversionReport, StateDictConversion, run_converter

__all__ = ['convert_hamburger_v1']


def convert_hamburger_v1(state_dict: Mapping[str, Tensor], *,
                         report: Optional[ConversionReport] = None,
                         drop_unknown: bool = False) -> 'OrderedDict[str, Tensor]':
    """Every Enjoy-Hamburger ``HamburgerV1`` block of ``state_dict`` (found by its
    ``upper_bread.0.weight``) in nlseg ``Hamburger``'s layout (module docstring); other keys
    are kept. Raises :class:`~nlseg.converters.ConversionError` naming the missing
    keys (no block found, a lower bread or BatchNorm key absent) or the unknown ones."""
    conv = StateDictConversion(state_dict, 'Enjoy-Hamburger HamburgerV1',
                               "nlseg's Hamburger", report)
    blocks = conv.find_prefixes('upper_bread.0.weight')
    if not blocks:
        conv.require('<prefix>upper_bread.0.weight')
    for block in blocks:
        conv.scope(block)
        where = block[:-1] or 'block'
        if conv.has(f'{block}lower_bread.0.weight'):
            lower = f'{block}lower_bread.0.'
            conv.report.note(f"{where}: NMF (ReLU after the lower bread): build "
                             "Hamburger(..., ham_type='NMF', trailing_relu=True)")
        else:
            lower = f'{block}lower_bread.'
            if conv.has(f'{block}lower_bread.weight'):
                conv.report.note(f"{where}: VQ or CD (no ReLU after the lower bread): build "
                                 "Hamburger(..., ham_type='VQ' or 'CD', trailing_relu=True)")
        conv.map(f'{lower}weight', f'{block}lower_bread.conv.weight')
        conv.map(f'{lower}bias', f'{block}lower_bread.conv.bias')
        conv.map(f'{block}upper_bread.0.weight', f'{block}upper_bread.conv.weight')
        conv.map_batch_norm(f'{block}upper_bread.1.', f'{block}upper_bread.bn.')
        if conv.map(f'{block}ham.bases', f'{block}ham.bases', required=False):
            conv.report.note(f'{where}: fixed bases saved: build the target with '
                             'ham_kwargs=dict(rand_init=False, ...)')
    return conv.result(drop_unknown)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_converter(convert_hamburger_v1, __doc__, argv)

