"""Token reshapes of the non-local family: a (B, C, H, W) map as (B, H*W, C) tokens and back.

Position i of the token axis is the flat index ``h * W + w`` of the map (``flatten(2)``), the
query/key index of every affinity A (B, N, M) the blocks form.
"""
from __future__ import annotations

import torch

__all__ = ['to_tokens', 'to_map']


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C)."""
    return x.flatten(2).transpose(1, 2)


def to_map(tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(B, H*W, C) -> (B, C, H, W) with the spatial size of ``like``."""
    b, _, c = tokens.shape
    return tokens.transpose(1, 2).reshape(b, c, *like.shape[2:])
