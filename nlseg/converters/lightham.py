"""Convert a checkpoint of mmseg's ``LightHamHead`` to nlseg's ``HamburgerHead``.

Usage::

    python tools/model_converters/lightham2nlseg.py SRC DST [--kernel-size {1,3}]
        [--drop-unknown] [--unsafe-load]

Source: ``mmseg.models.decode_heads.LightHamHead`` (SegNeXt's head, mmseg 1.x; the same
layout in mmseg 0.x): 1x1 ``squeeze`` ConvModule (sum of the selected levels -> ham
channels), ``hamburger`` (``ham_in`` 1x1 conv with bias, then ReLU, the NMF ham,
``ham_out`` 1x1 conv + norm, then ReLU(x + .)), 1x1 ``align`` ConvModule, ``conv_seg``.

Target: :class:`nlseg.models.decode_heads.HamburgerHead` built with the same
``in_channels`` and ``in_index`` lists (levels resized to the first one and concatenated,
as LightHamHead does), ``ham_channels``, ``channels``, ``norm_cfg``/``act_cfg``,
``ham_type='NMF'``, ``trailing_relu=True`` and the same ``MD_S``/``MD_R``/steps in
``ham_kwargs``. With ``--kernel-size 1`` the target is ``HamburgerHead(kernel_size=1)``,
LightHamHead's own form (add ``grad='bptt'`` to train it as LightHamHead does), and the 1x1
kernels are kept. By default (``--kernel-size 3``, HamNet's head) its squeeze and align are
3x3 ConvModules (padding 1), so their 1x1 kernels are embedded as the centre tap of a zero
3x3 kernel, which computes exactly the same::

    squeeze.conv.weight (O, I, 1, 1)   -> squeeze.conv.weight (O, I, 3, 3), centre tap
    align.conv.weight   (O, I, 1, 1)   -> align.conv.weight   (O, I, 3, 3), centre tap
    squeeze.<norm>.*, align.<norm>.*   -> unchanged
    hamburger.ham_in.*                 -> hamburger.lower_bread.*
    hamburger.ham_out.*                -> hamburger.upper_bread.*
    hamburger.ham.bases (if saved)     -> hamburger.ham.bases  (ham_kwargs rand_init=False)
    conv_seg.*                         -> unchanged

Under the head's prefix (``decode_head.`` in a segmentor checkpoint); every other key is kept.
The ham has no parameters. With random bases (the default) mmseg draws new bases at every
forward, so its evaluation output varies from call to call; nlseg evaluates with bases drawn
from a fixed seed (``eval_seed``): the same input gives the same output every time, and
equals LightHamHead's when LightHamHead is given those bases.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping, Optional, Sequence

from torch import Tensor

from .errors import ConversionError
from .state_dict import ConversionReport, StateDictConversion, embed_kernel, run_converter

__all__ = ['convert_lightham', 'convert_ham_head']

EMBEDDED = 'the 1x1 kernel embedded as the centre tap of a zero 3x3 kernel (exact with padding 1)'


def convert_ham_head(state_dict: Mapping[str, Tensor], source_kernel: int, source: str,
                     other_converter: str, *, report: Optional[ConversionReport] = None,
                     drop_unknown: bool = False,
                     kernel_size: int = 3) -> 'OrderedDict[str, Tensor]':
    """The mapping shared by ``LightHamHead`` (``source_kernel=1``: squeeze and align are
    1x1 and get embedded into 3x3) and Enjoy-Hamburger's seg_mm ``HamHead``
    (``source_kernel=3``: copied): both keep the ``squeeze``/``hamburger.ham_in``/
    ``hamburger.ham``/``hamburger.ham_out``/``align``/``conv_seg`` layout. A squeeze or align
    kernel of the other size raises :class:`ConversionError` naming ``other_converter``.
    ``kernel_size`` is the target head's (``HamburgerHead(kernel_size=...)``): 3 embeds 1x1
    source kernels, 1 keeps them (a 3x3 source cannot become 1x1: ValueError)."""
    if kernel_size not in (1, 3):
        raise ValueError(f'kernel_size must be 1 or 3, got {kernel_size!r}')
    if kernel_size < source_kernel:
        raise ValueError(f'the {source} has {source_kernel}x{source_kernel} squeeze and align '
                         f'kernels: the target needs kernel_size={source_kernel}, got '
                         f'{kernel_size}')
    conv = StateDictConversion(state_dict, source, "nlseg's HamburgerHead", report)
    heads = conv.find_prefixes('hamburger.ham_in.conv.weight')
    if not heads:
        conv.require('<prefix>hamburger.ham_in.conv.weight')
    for head in heads:
        conv.scope(head)
        for name in ('squeeze', 'align'):
            key = f'{head}{name}.conv.weight'
            weight = conv.tensor(key)
            if weight is not None:
                size = tuple(weight.shape[2:])
                if size != (source_kernel, source_kernel):
                    other = 3 if source_kernel == 1 else 1
                    raise ConversionError(
                        f'{key} has a {size[0]}x{size[1]} kernel, but the squeeze and align '
                        f'convs of the {source} are {source_kernel}x{source_kernel}'
                        + (f': a head with {other}x{other} ones is converted by '
                           f'{other_converter}' if size == (other, other) else ''))
                if source_kernel == 1 and kernel_size == 3:
                    conv.map(key, key, transform=embed_kernel, what=EMBEDDED)
                else:
                    conv.map(key, key)
            conv.map_tree(f'{head}{name}.', f'{head}{name}.')
        conv.map_tree(f'{head}hamburger.ham_in.', f'{head}hamburger.lower_bread.',
                      required=('conv.weight',))
        conv.map_tree(f'{head}hamburger.ham_out.', f'{head}hamburger.upper_bread.',
                      required=('conv.weight',))
        if conv.map(f'{head}hamburger.ham.bases', f'{head}hamburger.ham.bases',
                    required=False):
            conv.report.note('the source saved fixed NMF bases: build the target with '
                             'ham_kwargs=dict(rand_init=False, ...)')
        conv.map_tree(f'{head}conv_seg.', f'{head}conv_seg.', required=('weight',))
        conv.report.note(f"{head or 'head'}: build HamburgerHead with ham_type='NMF', "
                         f'kernel_size={kernel_size}, trailing_relu=True and the source '
                         'ham_kwargs (MD_S, MD_R, steps)'
                         + (", grad='bptt' to train as the source did" if source_kernel == 1
                            else ''))
    return conv.result(drop_unknown)


def convert_lightham(state_dict: Mapping[str, Tensor], *,
                     report: Optional[ConversionReport] = None,
                     drop_unknown: bool = False,
                     kernel_size: int = 3) -> 'OrderedDict[str, Tensor]':
    """mmseg ``LightHamHead`` state_dict (a head or a whole segmentor) -> nlseg
    ``HamburgerHead`` layout (module docstring): for ``HamburgerHead(kernel_size=3)`` (the
    default, the 1x1 kernels embedded) or ``kernel_size=1`` (LightHamHead's form, kernels
    kept). Raises :class:`ConversionError` naming missing or unknown keys, or a squeeze/align
    kernel that is not 1x1."""
    return convert_ham_head(state_dict, 1, "mmseg's LightHamHead", 'seg_mm_hamhead2nlseg.py',
                            report=report, drop_unknown=drop_unknown, kernel_size=kernel_size)


def main(argv: Optional[Sequence[str]] = None) -> int:
    def add_arguments(parser) -> None:
        parser.add_argument('--kernel-size', type=int, choices=(1, 3), default=3,
                            help="the target HamburgerHead's kernel_size: 3 (default) embeds "
                                 "the 1x1 squeeze and align kernels into 3x3 ones, 1 keeps them "
                                 "(LightHamHead's form)")
    return run_converter(convert_lightham, __doc__, argv, add_arguments,
                         lambda args: dict(kernel_size=args.kernel_size))

