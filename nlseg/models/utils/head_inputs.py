"""Checks of the decode heads: the feature-map list a head receives and the
``BaseDecodeHead`` arguments that mmseg leaves unchecked.

mmseg's ``BaseDecodeHead`` already asserts the structure of ``input_transform``, ``in_index``
and ``in_channels`` (and torch's dropout checks ``dropout_ratio``); those checks are mmseg's and
are not repeated here. What mmseg never checks, and would otherwise fail deep inside a
convolution, is checked here: ``channels`` and ``num_classes`` (positive integers) and the
value of an integer ``in_channels``. The primitive checks live in :mod:`nlseg.validation`.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

from nlseg.validation import check_feature_map, check_int

__all__ = ['check_head_inputs', 'check_decode_head_args']


def check_head_inputs(inputs: Any, owner: str, in_index: Union[int, Sequence[int]],
                      in_channels: Union[int, Sequence[int]], input_transform: Optional[str],
                      strict: bool = True) -> None:
    """Check the feature maps a ``BaseDecodeHead`` selects from ``inputs`` (a list of levels).

    ``in_channels`` is the head's attribute after ``BaseDecodeHead.__init__``: an int (the
    channels of ``inputs[in_index]``, or their sum for ``'resize_concat'``) or a list (one per
    selected level for ``'multiple_select'``). With ``strict=False`` (heads wrapping any mmseg
    head), levels that are sequences (heads with structured levels, such as the (x, cls_token)
    pairs of mmseg's DPTHead) are left to the wrapped head.
    """
    if not isinstance(inputs, (list, tuple)):
        raise TypeError(f'{owner} expects inputs to be a list (or tuple) of (B, C, H, W) feature '
                        f'maps, one per backbone level, got {type(inputs).__name__}')
    indices = list(in_index) if isinstance(in_index, (list, tuple)) else [in_index]
    for i in indices:
        if not -len(inputs) <= i < len(inputs):
            raise ValueError(f'{owner} selects inputs[{i}] (in_index={in_index}) but received '
                             f'{len(inputs)} feature maps')
    levels = [inputs[i] for i in indices]
    if not strict and any(isinstance(x, (list, tuple)) for x in levels):
        return
    for i, x in zip(indices, levels):
        check_feature_map(x, owner, name=f'inputs[{i}]')
    batches = {x.shape[0] for x in levels}
    if len(batches) > 1:
        raise ValueError(f'{owner}: the selected levels (in_index={in_index}) differ in batch '
                         f'size: shapes {[tuple(x.shape) for x in levels]}')
    if input_transform == 'resize_concat':
        total = sum(x.shape[1] for x in levels)
        if total != in_channels:
            raise ValueError(f'{owner} expects an input with {in_channels} channels '
                             f'(in_channels, summed over in_index={in_index}), received shapes '
                             f'{[tuple(x.shape) for x in levels]} ({total} channels)')
        return
    expected = list(in_channels) if isinstance(in_channels, (list, tuple)) else [in_channels]
    for i, x, c in zip(indices, levels, expected):
        if x.shape[1] != c:
            raise ValueError(f'{owner} expects an input with {c} channels (in_channels) at '
                             f'inputs[{i}], received shape {tuple(x.shape)} '
                             f'({x.shape[1]} channels)')


def check_decode_head_args(kwargs: dict) -> None:
    """Check the ``BaseDecodeHead`` arguments in ``kwargs`` that mmseg does not check:
    ``channels`` and ``num_classes`` (integers >= 1) and an integer ``in_channels`` (>= 1).
    The rest (input_transform, in_index, list-valued in_channels, dropout_ratio) is left to
    ``BaseDecodeHead``, and absent arguments too (Python names a missing one)."""
    for name in ('channels', 'num_classes'):
        if name in kwargs:
            check_int(name, kwargs[name])
    in_channels = kwargs.get('in_channels')
    if in_channels is not None and not isinstance(in_channels, (list, tuple)):
        check_int('in_channels', in_channels)
