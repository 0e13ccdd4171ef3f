"""Convert a checkpoint of Enjoy-Hamburger's seg_mm ``HamHead`` to nlseg's ``HamburgerHead``.

Usage::

    python tools/model_converters/seg_mm_hamhead2nlseg.py SRC DST [--drop-unknown]
        [--unsafe-load]

Source: the mmseg-based HamNet head of repo Gsunshine/Enjoy-Hamburger
(``seg_mm/mmseg/models/decode_heads/ham_head.py``): 3x3 ``squeeze`` ConvModule (in_channels
-> ham channels), ``hamburger`` (``ham_in`` 1x1 conv with bias, ReLU, the NMF ham,
``ham_out`` 1x1 conv + norm, ReLU(x + .)), 3x3 ``align`` ConvModule, ``conv_seg``: the
layout that mmseg's ``LightHamHead`` later took over with 1x1 squeeze/align
(``lightham2nlseg.py``).

Target: :class:`nlseg.models.decode_heads.HamburgerHead` with the same ``in_channels``,
``ham_channels``, ``channels``, ``norm_cfg``/``act_cfg``, ``ham_type='NMF'``,
``trailing_relu=True`` and the source's ``MD_S``/``MD_R``/steps in ``ham_kwargs``::

    squeeze.*, align.*, conv_seg.*    -> unchanged (3x3 in both)
    hamburger.ham_in.*                -> hamburger.lower_bread.*
    hamburger.ham_out.*               -> hamburger.upper_bread.*
    hamburger.ham.bases (if saved)    -> hamburger.ham.bases  (ham_kwargs rand_init=False)

Under the head's prefix (``decode_head.``); every other key is kept. Not recorded in this
project: the exact code of that file; the layout above is the one its successor
``LightHamHead`` keeps (``ham_in``/``ham``/``ham_out``), with 3x3 squeeze/align as in the
paper's appendix E.3.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional, Sequence

from torch import Tensor

from .lightham import convert_ham_head
from .state_dict import ConversionReport, run_converter

__all__ = ['convert_seg_mm_hamhead']


def convert_seg_mm_hamhead(state_dict: Mapping[str, Tensor], *,
                           report: Optional[ConversionReport] = None,
                           drop_unknown: bool = False) -> 'OrderedDict[str, Tensor]':
    """Enjoy-Hamburger seg_mm ``HamHead`` state_dict (a head or a whole segmentor) -> nlseg
    ``HamburgerHead`` layout (module docstring). Raises
    :class:`~nlseg.converters.ConversionError` naming missing or unknown keys, or a
    squeeze/align kernel that is not 3x3."""
    return convert_ham_head(state_dict, 3, "Enjoy-Hamburger seg_mm HamHead",
                            'lightham2nlseg.py', report=report, drop_unknown=drop_unknown)


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_converter(convert_seg_mm_hamhead, __doc__, argv)

