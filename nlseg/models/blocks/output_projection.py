"""The output projection W_z of the non-local family (eq. 6 of Wang et al. 2018) and its init.

Y = X + W_z(y): W_z is a 1x1 ``ConvModule`` C' -> C with the block's norm. Zero-initialised
(mmcv's ``NonLocal2d`` default, ``zero_init_output=True``) the block starts as the identity;
``default_init_output`` keeps ConvModule's own init instead (the context path open at init).
"""
from __future__ import annotations

import torch
from mmcv.cnn import ConvModule
from mmengine.model.weight_init import constant_init

from .tokens import to_map

__all__ = ['project_out', 'zero_init_output', 'default_init_output']


def project_out(conv_out: ConvModule, tokens: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``conv_out`` (W_z of eq. 6, with its norm) on the aggregated tokens, as a float32
    island under autocast. A g of the unnormalised affinities (dot product, concatenation,
    the NS unit's A g - g) grows like the cube of the input scale and overflows float16 before
    the output norm brings it back; the ops already return it in float32."""
    y = to_map(tokens, like)
    device_type = like.device.type
    if not torch.is_autocast_enabled(device_type):
        return conv_out(y)
    with torch.autocast(device_type=device_type, enabled=False):
        return conv_out(y.to(conv_out.conv.weight.dtype))


def zero_init_output(conv_module: ConvModule) -> None:
    """Zero the output norm (or the conv when there is none): the block starts as identity."""
    if conv_module.norm_cfg is None:
        constant_init(conv_module.conv, 0)
    else:
        constant_init(conv_module.norm, 0)


def default_init_output(conv_module: ConvModule) -> None:
    """ConvModule's own init of the output layer (kaiming conv, norm weight 1 and bias 0):
    the block's context path is open from the start instead of gated shut."""
    conv_module.init_weights()
