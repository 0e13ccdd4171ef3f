"""NLTVHead: the NLTV-regularised softmax of Jia, Tai, Liu over ANY mmseg decode head.

The wrapped head runs unchanged; its last feature map (the input of its ``cls_seg``) is
captured with a forward pre-hook, a kNN graph (eq. 11) is built online from it (or from the
logits), and :class:`~nlseg.models.blocks.NLTVSoftmax` regularises the logits (eq. 28/35). The
head returns log A (log-probabilities, exact log_softmax of the last iterate), so
CrossEntropyLoss on it is exactly the NLL of A and mmseg's loss, predict and test pipelines work
unchanged. num_classes, out_channels, align_corners, ignore_index, loss_decode, sampler and
threshold are the base head's (delegated), and so are ``loss_by_feat`` and ``predict_by_feat``.
For a binary head (out_channels = 1, sigmoid), the logit o is regularised as the two classes
(0, o) and the head returns log A_1 - log A_0, whose sigmoid is A_1.
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ..blocks.nltv_softmax import NLTVSoftmax
from nlseg.validation import check_bool, check_choice
from ..utils.head_inputs import check_head_inputs

__all__ = ['NLTVHead']

GRAPH_SOURCES = ('features', 'logits')

# attributes that behave as in the base head (read from it, written to it)
_DELEGATED = ('in_channels', 'channels', 'num_classes', 'out_channels', 'threshold',
              'ignore_index', 'align_corners', 'loss_decode', 'sampler', 'in_index',
              'input_transform', 'dropout_ratio', 'conv_cfg', 'norm_cfg', 'act_cfg')


def _delegate(name: str) -> property:

    def getter(self):
        return getattr(self.base_head, name)

    def setter(self, value):
        setattr(self.base_head, name, value)

    return property(getter, setter, doc=f'``base_head.{name}``')


@MODELS.register_module()
class NLTVHead(BaseDecodeHead):
    """Wrap a decode head and replace its softmax by the NLTV-regularised softmax.

    Args:
        base_head: config (or module) of any ``BaseDecodeHead`` (FCNHead, UNet's FCNHead,
            nlseg heads, ...).
        nltv: keyword arguments of :class:`NLTVSoftmax` (k, lam, tau, eps, train_iters,
            test_iters, grad, learnable_graph, feature_norm, ...). ``feature_norm`` defaults to
            'l2' here (network features have no fixed scale).
        graph_source: 'features' (the base head's last feature map, the input of its
            classifier) or 'logits'.
        feature_module: name of the base head's submodule whose input is the feature map;
            default: 'dropout' when the head has a dropout module (its input is the feature
            before dropout), else 'conv_seg'.
        resize_features: if the captured feature map and the logits differ in spatial size,
            resize the features bilinearly instead of raising a ValueError.
        init_cfg: initialisation of this wrapper (the base head keeps its own).
    """

    def __init__(self,
                 base_head: dict,
                 nltv: Optional[dict] = None,
                 graph_source: str = 'features',
                 feature_module: Optional[str] = None,
                 resize_features: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        # BaseDecodeHead.__init__ would build a second classifier and loss: the base head owns
        # them, and every BaseDecodeHead attribute is delegated to it
        BaseModule.__init__(self, init_cfg)
        check_choice('graph_source', graph_source, GRAPH_SOURCES)
        check_bool('resize_features', resize_features)
        if nltv is not None and not isinstance(nltv, dict):
            raise TypeError(f'nltv must be a dict of NLTVSoftmax arguments or None, got '
                            f'{nltv!r} ({type(nltv).__name__})')
        if feature_module is not None and not isinstance(feature_module, str):
            raise TypeError(f'feature_module must be the name (str) of a submodule of the base '
                            f'head or None, got {feature_module!r}')
        if isinstance(base_head, nn.Module):
            self.base_head = base_head
        elif isinstance(base_head, dict):
            self.base_head = MODELS.build(base_head)
        else:
            raise TypeError(f'base_head must be a head config dict or module, got '
                            f'{type(base_head)}')
        if not isinstance(self.base_head, BaseDecodeHead):
            raise TypeError(f'base_head must build a BaseDecodeHead, got '
                            f'{type(self.base_head).__name__}')
        nltv = dict(nltv or {})
        nltv.setdefault('feature_norm', 'l2')
        self.nltv = NLTVSoftmax(**nltv)
        self.graph_source = graph_source
        self.resize_features = resize_features
        self._captured: Optional[torch.Tensor] = None
        if graph_source == 'features':
            if feature_module is None:
                feature_module = 'dropout' if isinstance(
                    getattr(self.base_head, 'dropout', None), nn.Module) else 'conv_seg'
            target = getattr(self.base_head, feature_module, None)
            if not isinstance(target, nn.Module):
                raise ValueError(f'feature_module {feature_module!r} is not a submodule of '
                                 f'{type(self.base_head).__name__}')
            target.register_forward_pre_hook(self._capture_feature)
        self.feature_module = feature_module

    def _capture_feature(self, module: nn.Module, args: tuple) -> None:
        self._captured = args[0]

    def _base_forward(self, inputs):
        self._captured = None
        logits = self.base_head(inputs)
        feats, self._captured = self._captured, None
        if not isinstance(logits, torch.Tensor):
            raise TypeError(f'{type(self.base_head).__name__}.forward must return a tensor of '
                            f'logits, got {type(logits)}')
        return logits, feats

    def forward(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """Base head -> logits (B, K, H, W) -> log of the NLTV-regularised probabilities.

        The feature maps the base head selects are checked first (a list of non-empty floating
        (B, C, H, W) tensors with its in_channels); levels that are sequences (heads with
        structured levels, such as DPTHead's (x, cls_token) pairs) are left to the base head.
        """
        check_head_inputs(inputs, type(self).__name__, self.in_index, self.in_channels,
                          self.input_transform, strict=False)
        logits, feats = self._base_forward(inputs)
        if self.graph_source == 'features':
            if feats is None:
                raise RuntimeError(
                    f'{type(self.base_head).__name__} did not call its {self.feature_module!r} '
                    f'module: set feature_module to the module whose input is its feature map '
                    f'or use graph_source="logits"')
            if feats.shape[2:] != logits.shape[2:]:
                if not self.resize_features:
                    raise ValueError(
                        f'the feature map {tuple(feats.shape[2:])} and the logits '
                        f'{tuple(logits.shape[2:])} differ in spatial size; set '
                        f'resize_features=True to resize the features')
                feats = F.interpolate(feats, size=logits.shape[2:], mode='bilinear',
                                      align_corners=self.align_corners)
        binary = logits.shape[1] == 1
        if binary:
            logits = torch.cat([torch.zeros_like(logits), logits], dim=1)
        log_probs = self.nltv(logits, feats if self.graph_source == 'features' else logits,
                              log=True)
        if binary:
            return log_probs[:, 1:] - log_probs[:, :1]
        return log_probs

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples) -> dict:
        return self.base_head.loss_by_feat(seg_logits, batch_data_samples)

    def predict_by_feat(self, seg_logits: torch.Tensor, batch_img_metas: List[dict]):
        return self.base_head.predict_by_feat(seg_logits, batch_img_metas)

    def cls_seg(self, feat: torch.Tensor) -> torch.Tensor:
        return self.base_head.cls_seg(feat)

    def extra_repr(self) -> str:
        return f'graph_source={self.graph_source!r}, feature_module={self.feature_module!r}'


for _name in _DELEGATED:
    setattr(NLTVHead, _name, _delegate(_name))
del _name
