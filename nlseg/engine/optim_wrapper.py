"""Mixed-precision training without a loss scaler: bf16 autocast on any device.

mmengine's ``AmpOptimWrapper`` (what ``tools/train.py --amp`` selects) is fp16 with a dynamic
loss scale and refuses to run without a GPU. bfloat16 has float32's exponent range, so it
needs no loss scaling and runs on CPUs too: :class:`AutocastOptimWrapper` is a plain
``OptimWrapper`` whose ``optim_context`` (the forward pass of ``train_step``) runs under
``torch.autocast`` on the model's device. Select it in a config::

    optim_wrapper = dict(type='AutocastOptimWrapper', dtype='bfloat16', optimizer=...)

or on the command line: ``--cfg-options optim_wrapper.type=AutocastOptimWrapper``.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from mmengine.optim import OptimWrapper
from mmseg.registry import OPTIM_WRAPPERS
from torch import nn

_DTYPES = {'bfloat16': torch.bfloat16, 'float16': torch.float16}


@OPTIM_WRAPPERS.register_module()
class AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` that runs the training forward pass under ``torch.autocast``.

    Args:
        dtype: ``'bfloat16'`` (default; any device, no loss scale needed) or ``'float16'``
            (CUDA only, and without a loss scaler small gradients underflow: prefer
            ``--amp``, i.e. mmengine's ``AmpOptimWrapper``, for fp16).
        **kwargs: everything ``OptimWrapper`` takes (``optimizer``, ``clip_grad``,
            ``accumulative_counts``).
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in _DTYPES:
            raise ValueError(f'AutocastOptimWrapper: dtype must be one of {sorted(_DTYPES)}, '
                             f'got {dtype!r}')
        super().__init__(**kwargs)
        self.cast_dtype = _DTYPES[dtype]

    @contextmanager
    def optim_context(self, model: nn.Module) -> Iterator[None]:
        device_type = _model_device_type(model)
        if self.cast_dtype is torch.float16 and device_type != 'cuda':
            raise RuntimeError(
                'AutocastOptimWrapper: dtype=\'float16\' needs a CUDA model (CPU autocast '
                f'supports bfloat16); the model is on {device_type!r}. Use dtype=\'bfloat16\'.')
        with super().optim_context(model), torch.autocast(device_type=device_type,
                                                          dtype=self.cast_dtype):
            yield


def _model_device_type(model: nn.Module) -> str:
    """The device type of the model's first parameter ('cpu' for a parameterless model)."""
    for param in model.parameters():
        return param.device.type
    return 'cpu'
