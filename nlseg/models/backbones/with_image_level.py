"""WithImageLevel: a backbone wrapper that appends the input image as its last feature level.

A decode head never sees the image; the NLTV-regularised softmax of Jia, Tai, Liu builds its
graph (eq. 11) from the image colours. ``dict(type='WithImageLevel', backbone=dict(...))`` runs
the wrapped backbone on the preprocessed batch (B, 3, H, W) and returns its levels followed by
that batch itself, so ``NLTVHead(graph_source='image', image_index=-1)`` can read it. The image
level is the *preprocessed* input: normalised by the data preprocessor's mean and std (and
padded with its ``pad_val`` after normalisation); ``NLTVHead`` un-normalises it with its
``image_mean`` / ``image_std``, which must be the data preprocessor's ``mean`` / ``std``.

Checkpoints: the wrapper has no parameters of its own, and its ``state_dict`` and
``load_state_dict`` are the wrapped backbone's, key for key. In a segmentor the keys stay
``backbone.<key of the wrapped backbone>`` (not ``backbone.backbone.<key>``), so a checkpoint
of the same model without the wrapper loads unchanged (and the other way round), and so does
an ``init_cfg=dict(type='Pretrained', ...)`` of the wrapped backbone: ``init_weights`` and
``train`` (``norm_eval``, ``frozen_stages``) are the wrapped backbone's. ``named_parameters``
shows the module path ``backbone.backbone.<key>`` (optimizer ``custom_keys`` such as
``'backbone'`` still match).

Use the image level only where it is expected: heads and necks that take every level (a neck,
``input_transform='resize_concat'`` over all levels, ``in_index=-1``) would see it as a
feature map; select levels with non-negative ``in_index`` and put no neck in front.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Optional, Union

import torch.nn as nn
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from nlseg.validation import check_feature_map

__all__ = ['WithImageLevel']


@MODELS.register_module()
class WithImageLevel(BaseModule):
    """Run ``backbone`` and append the (preprocessed) input image as the last level.

    Args:
        backbone: config (or module) of the wrapped backbone; its forward returns a tuple or
            list of feature maps (or one tensor).
        init_cfg: must be None: initialisation is the wrapped backbone's (its own
            ``init_cfg``).
    """

    def __init__(self, backbone: Union[dict, nn.Module], init_cfg: Optional[dict] = None
                 ) -> None:
        if init_cfg is not None:
            raise ValueError(f'WithImageLevel has no weights of its own: give init_cfg to the '
                             f'wrapped backbone (backbone=dict(..., init_cfg=...)), got '
                             f'init_cfg={init_cfg!r}')
        super().__init__(init_cfg=None)
        if isinstance(backbone, nn.Module):
            self.backbone = backbone
        elif isinstance(backbone, dict):
            self.backbone = MODELS.build(backbone)
        else:
            raise TypeError(f'backbone must be a backbone config dict or an nn.Module, got '
                            f'{backbone!r} ({type(backbone).__name__})')
        self._register_load_state_dict_pre_hook(self._add_backbone_prefix)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """(B, 3, H, W) -> (*levels of the backbone, x)."""
        check_feature_map(x, 'WithImageLevel')
        outs = self.backbone(x)
        if isinstance(outs, Tensor):
            outs = (outs,)
        if not isinstance(outs, (tuple, list)):
            raise TypeError(f'{type(self.backbone).__name__}.forward must return a tensor or '
                            f'a tuple/list of feature maps, got {type(outs).__name__}')
        return (*outs, x)

    def init_weights(self) -> None:
        """The wrapped backbone's initialisation (its ``init_cfg``, e.g. Pretrained)."""
        self.backbone.init_weights()
        self._is_init = True

    def state_dict(self, *args, destination=None, prefix: str = '', keep_vars: bool = False):
        """The wrapped backbone's state dict, with its keys (no ``backbone.`` added)."""
        if args:  # torch's deprecated positional form (destination, prefix, keep_vars)
            return self.backbone.state_dict(*args)
        if destination is None:
            destination = OrderedDict()
        return self.backbone.state_dict(destination=destination, prefix=prefix,
                                        keep_vars=keep_vars)

    def _add_backbone_prefix(self, state_dict: dict, prefix: str, *args) -> None:
        """Load hook: keys ``<prefix><key>`` of the wrapped backbone become
        ``<prefix>backbone.<key>`` (the module path), in place; keys already on that path
        (an old wrapper checkpoint) are kept."""
        inner = prefix + 'backbone.'
        for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
            state_dict[inner + key[len(prefix):]] = state_dict.pop(key)
