"""Argument and input checks shared by the blocks and heads of :mod:`nlseg.models`.

Every check raises before any computation, with a message that names the argument and the
accepted values: ``TypeError`` for a value of the wrong type, ``ValueError`` for a value of the
right type outside the accepted range (or choices).

Input tensors (:func:`check_feature_map`) must be 4-D ``(B, C, H, W)`` maps of a floating
dtype (float16, bfloat16, float32 or float64) with B >= 1 and H, W >= 1: an empty batch (or map)
raises a ``ValueError`` instead of flowing through (BatchNorm in training, the random bases of
the hams and the kNN graph of NLTV all fail or misbehave on it); mmseg never feeds a decode
head an empty batch. The checks only read shapes and dtypes (cheap, and unchanged under
autocast and ``torch.jit.trace``).
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Optional, Sequence, Union

import torch

__all__ = ['FLOAT_DTYPES', 'INPUT_TRANSFORMS', 'check_choice', 'check_int', 'check_real',
           'check_bool', 'check_optional_dict', 'check_feature_map', 'check_head_inputs',
           'check_decode_head_args']

#: dtypes accepted for input feature maps.
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
#: accepted values of ``BaseDecodeHead(input_transform=...)``.
INPUT_TRANSFORMS = (None, 'resize_concat', 'multiple_select')


def check_choice(name: str, value: Any, choices: Sequence) -> None:
    """ValueError naming the argument and the accepted values when ``value`` is not one."""
    choices = tuple(choices)
    if not any(value is c or (type(value) is type(c) and value == c) for c in choices):
        raise ValueError(f'{name} must be one of {choices}, got {value!r}')


def check_int(name: str, value: Any, min_value: Optional[int] = 1) -> int:
    """``value`` as an int: TypeError unless an integer (bool is not one), ValueError when
    below ``min_value`` (None: no bound)."""
    bound = '' if min_value is None else f' >= {min_value}'
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f'{name} must be an integer{bound}, got {value!r} '
                        f'({type(value).__name__})')
    if min_value is not None and value < min_value:
        raise ValueError(f'{name} must be an integer{bound}, got {value!r}')
    return int(value)


def _range_text(low: Optional[float], high: Optional[float], low_open: bool,
                high_open: bool) -> str:
    if low is not None and high is not None:
        return f'in {"(" if low_open else "["}{low}, {high}{")" if high_open else "]"}'
    if low is not None:
        return f'{">" if low_open else ">="} {low}'
    if high is not None:
        return f'{"<" if high_open else "<="} {high}'
    return 'not NaN'


def check_real(name: str, value: Any, low: Optional[float] = None,
               high: Optional[float] = None, low_open: bool = False,
               high_open: bool = False) -> float:
    """``value`` as a float: TypeError unless a real number (bool is not one), ValueError when
    NaN or outside [low, high] (an open end excludes the bound; None: unbounded; infinities
    pass an unbounded end)."""
    text = _range_text(low, high, low_open, high_open)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f'{name} must be a real number ({text}), got {value!r} '
                        f'({type(value).__name__})')
    v = float(value)
    ok = not math.isnan(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        raise ValueError(f'{name} must be {text}, got {value!r}' if low is not None or
                         high is not None else f'{name} must not be NaN, got {value!r}')
    return v


def check_bool(name: str, value: Any) -> bool:
    """TypeError unless ``value`` is True or False (a string such as 'False' is truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f'{name} must be True or False, got {value!r} ({type(value).__name__})')
    return value


def check_optional_dict(name: str, value: Any) -> None:
    """TypeError unless ``value`` is None or a dict (a config)."""
    if value is not None and not isinstance(value, dict):
        raise TypeError(f'{name} must be a dict or None, got {value!r} ({type(value).__name__})')


def check_feature_map(x: Any, owner: str, name: str = 'input',
                      channels: Optional[int] = None) -> None:
    """Clear error unless ``x`` is a non-empty floating (B, C, H, W) tensor (with ``channels``
    channels when given: the module was built for ``in_channels=channels``).

    TypeError: not a tensor, or not float16/bfloat16/float32/float64. ValueError: not 4-D,
    wrong channel count, B == 0 (empty batch) or H * W == 0.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{owner} expects {name} to be a (B, C, H, W) torch.Tensor, got '
                        f'{type(x).__name__}')
    if x.dim() != 4:
        raise ValueError(f'{owner} expects {name} to be a 4-D (B, C, H, W) tensor, got shape '
                         f'{tuple(x.shape)} ({x.dim()}-D)')
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f'{owner} expects a floating-point {name} (dtype float16, bfloat16, '
                        f'float32 or float64), got dtype {x.dtype}')
    shape = tuple(x.shape)
    if channels is not None and shape[1] != channels:
        raise ValueError(f'{owner} was built for in_channels={channels} but received an '
                         f'{name} with {shape[1]} channels (shape {shape})')
    if shape[0] == 0:
        raise ValueError(f'{owner}: empty batch: got {name} of shape {shape} (B must be >= 1)')
    if shape[2] == 0 or shape[3] == 0:
        raise ValueError(f'{owner}: empty feature map: got {name} of shape {shape} '
                         f'(H and W must be >= 1)')


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
    """Check the ``BaseDecodeHead`` arguments in ``kwargs`` that mmseg only asserts (or does
    not check): in_channels, channels, num_classes, in_index, input_transform, dropout_ratio.
    Absent arguments are left to ``BaseDecodeHead`` (Python names a missing one)."""
    transform = kwargs.get('input_transform')
    check_choice('input_transform', transform, INPUT_TRANSFORMS)
    multi = transform is not None
    for name in ('channels', 'num_classes'):
        if name in kwargs:
            check_int(name, kwargs[name])
    if 'in_channels' in kwargs:
        in_channels = kwargs['in_channels']
        if multi:
            if not isinstance(in_channels, (list, tuple)) or not in_channels:
                raise TypeError(f'in_channels must be a non-empty list of integers with '
                                f'input_transform={transform!r}, got {in_channels!r}')
            for c in in_channels:
                check_int('in_channels', c)
        else:
            if isinstance(in_channels, (list, tuple)):
                raise TypeError(f'in_channels must be an integer with input_transform=None '
                                f'(set input_transform to \'resize_concat\' or '
                                f'\'multiple_select\' for several levels), got {in_channels!r}')
            check_int('in_channels', in_channels)
    in_index = kwargs.get('in_index', -1)
    if multi:
        if not isinstance(in_index, (list, tuple)) or not in_index:
            raise TypeError(f'in_index must be a non-empty list of integers with '
                            f'input_transform={transform!r}, got {in_index!r}')
        for i in in_index:
            check_int('in_index', i, min_value=None)
        in_channels = kwargs.get('in_channels')
        if isinstance(in_channels, (list, tuple)) and len(in_channels) != len(in_index):
            raise ValueError(f'in_channels ({len(in_channels)} entries) and in_index '
                             f'({len(in_index)} entries) must have the same length')
    else:
        if isinstance(in_index, (list, tuple)):
            raise TypeError(f'in_index must be an integer with input_transform=None, got '
                            f'{in_index!r}')
        check_int('in_index', in_index, min_value=None)
    if 'dropout_ratio' in kwargs:
        check_real('dropout_ratio', kwargs['dropout_ratio'], 0, 1, high_open=True)
