"""Argument and input checks: the one validation layer of nlseg, below :mod:`nlseg.ops`.

Pure Python and torch (no mm* imports): ops, blocks, heads and tools all use these helpers, and
each argument is checked once, in the module that owns it.

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
from typing import Any, Optional, Sequence

import torch

__all__ = ['FLOAT_DTYPES', 'check_choice', 'check_int', 'check_real', 'check_bool',
           'check_optional_dict', 'check_feature_map']

#: dtypes accepted for input feature maps.
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


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
