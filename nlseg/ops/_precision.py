"""Precision helpers shared by the affinity ops: run a computation in (at least) float32
with autocast disabled, so that logits, softmax and degree normalisation never overflow
or lose their normalisation in float16/bfloat16."""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

__all__: list[str] = []


def accumulation_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (never a half type)."""
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


@contextlib.contextmanager
def autocast_disabled(tensor: torch.Tensor) -> Iterator[None]:
    """Disable autocast on ``tensor``'s device type for the enclosed block."""
    with torch.autocast(device_type=tensor.device.type, enabled=False):
        yield


def upcast(*tensors: torch.Tensor) -> list[torch.Tensor]:
    """Cast every tensor to the common accumulation dtype (see :func:`accumulation_dtype`)."""
    dtype = accumulation_dtype(*tensors)
    return [t.to(dtype) for t in tensors]
