"""NLTVHead: the NLTV-regularised softmax of Jia, Tai, Liu over ANY mmseg decode head.

The wrapped head runs unchanged; its last feature map (the input of its ``cls_seg``) is
captured with a forward pre-hook, a kNN graph (eq. 11) is built online from it (or from
the logits, or, as the paper does, from the image colours: ``graph_source='image'``), or the
4-neighbour pixel grid with unit weights is taken (``graph_source='grid'``: the LOCAL
TV-regularised softmax of the paper's ref. [10], the RUnet / RSegnet rows of its tables), and
:class:`~nlseg.models.blocks.NLTVSoftmax` regularises the logits (eq. 28/35). The head returns
log A (log-probabilities, exact log_softmax of the last iterate), so CrossEntropyLoss on it is
exactly the NLL of A and mmseg's loss, predict and test pipelines work unchanged. num_classes,
out_channels, align_corners, ignore_index, loss_decode, sampler and threshold are the base
head's (delegated), and so are ``loss_by_feat`` and ``predict_by_feat``.
For a binary head (out_channels = 1, sigmoid), the logit o is regularised as the two classes
(0, o) and the head returns log A_1 - log A_0, whose sigmoid is A_1.

The image graph (``graph_source='image'``): the paper's graph of eq. 11 over positions and
RGB colours in [0, 1] (lambda1 = 1, lambda2 = 0.5, sigma_a = 40, sigma_b = 13/255,
sigma_g = 3, the defaults of ``nltv``; d = ``nltv=dict(k=...)``, 20 on WBC, 10 on CamVid). The
backbone must be wrapped in ``WithImageLevel`` (``dict(type='WithImageLevel',
backbone=dict(...))``), which appends the preprocessed input batch as the last level; the head
reads level ``image_index`` (-1), un-normalises it, colour = clamp((x * std + mean) / 255, 0, 1)
with ``image_mean`` / ``image_std`` (the data preprocessor's ``mean`` / ``std``, in the channel
order of the preprocessed batch), and builds the graph at the resolution of the logits: the
paper's networks (U-Net, SegNet) predict at the image resolution, where the graph is the
paper's; a coarser logit map gets the area average of the colours over each logit cell
(``adaptive_avg_pool2d``, the colour of the cell rather than of one sampled pixel), a finer one
(not produced by mmseg heads) a bilinear upsampling. Positions are in units of the logit grid.
The paper computes the graph offline from the original image; here it is rebuilt at every
forward from the augmented (cropped, flipped, photometrically distorted) input, the graph of
the image the network sees. The graph costs O(N^2) distances per image (N pixels of the
logits), chunked.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.registry import MODELS

from ..blocks.nltv_softmax import NLTVSoftmax
from nlseg.validation import check_bool, check_choice, check_feature_map, check_int, \
    check_real
from ..utils.head_inputs import check_head_inputs

__all__ = ['NLTVHead']

GRAPH_SOURCES = ('features', 'logits', 'image', 'grid')

#: mmseg's data preprocessor defaults (ImageNet mean / std on the 0-255 scale)
DEFAULT_IMAGE_MEAN = (123.675, 116.28, 103.53)
DEFAULT_IMAGE_STD = (58.395, 57.12, 57.375)

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
            classifier), 'logits', 'image' (the paper's colour graph, module docstring;
            needs a ``WithImageLevel`` backbone) or 'grid' (4 geometric neighbours, weight 1:
            the local TV of the paper's middle column; sets ``nltv['graph']='grid'``).
            ``feature_norm`` defaults to None for 'image' (colours already in [0, 1]).
        feature_module: name of the base head's submodule whose input is the feature map;
            default: 'dropout' when the head has a dropout module (its input is the feature
            before dropout), else 'conv_seg'. 'features' only (set otherwise: warns).
        resize_features: if the captured feature map and the logits differ in spatial size,
            resize the features bilinearly instead of raising a ValueError. 'features' only.
        image_index: the level of the head's inputs holding the preprocessed image
            ('image' only; -1: the last, where ``WithImageLevel`` puts it).
        image_mean, image_std: the data preprocessor's per-channel mean and std (0-255
            scale), three values each, used to un-normalise the image level ('image' only;
            default: mmseg's ImageNet values).
        init_cfg: initialisation of this wrapper (the base head keeps its own).
    """

    def __init__(self,
                 base_head: dict,
                 nltv: Optional[dict] = None,
                 graph_source: str = 'features',
                 feature_module: Optional[str] = None,
                 resize_features: bool = False,
                 init_cfg: Optional[dict] = None,
                 image_index: int = -1,
                 image_mean: Sequence[float] = DEFAULT_IMAGE_MEAN,
                 image_std: Sequence[float] = DEFAULT_IMAGE_STD) -> None:
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
        check_int('image_index', image_index, min_value=None)
        self.image_mean = _check_colour_triple('image_mean', image_mean, positive=False)
        self.image_std = _check_colour_triple('image_std', image_std, positive=True)
        if graph_source != 'image':
            given = [name for name, value, default in (
                ('image_index', image_index, -1),
                ('image_mean', self.image_mean, DEFAULT_IMAGE_MEAN),
                ('image_std', self.image_std, DEFAULT_IMAGE_STD)) if value != default]
            if given:
                warnings.warn(f"NLTVHead: {', '.join(given)} have no effect with "
                              f"graph_source={graph_source!r} (only with 'image')",
                              UserWarning, stacklevel=2)
        if graph_source != 'features' and (feature_module is not None or resize_features):
            warnings.warn(f"NLTVHead: feature_module / resize_features have no effect with "
                          f"graph_source={graph_source!r} (only with 'features')",
                          UserWarning, stacklevel=2)
        self.image_index = image_index
        nltv = dict(nltv or {})
        nltv.setdefault('feature_norm', None if graph_source == 'image' else 'l2')
        graph = nltv.setdefault('graph', 'grid' if graph_source == 'grid' else 'knn')
        if (graph == 'grid') != (graph_source == 'grid'):
            raise ValueError(f"graph_source={graph_source!r} and nltv graph={graph!r} "
                             f"disagree: the grid graph is graph_source='grid' (it sets "
                             f"nltv graph='grid'), every other source builds graph='knn'")
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
        if self.graph_source == 'image':
            colours = self._image_colours(inputs)
        logits, feats = self._base_forward(inputs)
        if self.graph_source == 'image':
            feats = self._resize_colours(colours, logits.shape[2:])
        elif self.graph_source == 'features':
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
        if self.graph_source in ('logits', 'grid'):
            feats = logits  # the grid reads only the size
        log_probs = self.nltv(logits, feats, log=True)
        if binary:
            return log_probs[:, 1:] - log_probs[:, :1]
        return log_probs

    def _image_colours(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """The image level ``inputs[image_index]`` as colours in [0, 1], (B, 3, H, W)."""
        n = len(inputs)
        if not -n <= self.image_index < n:
            raise ValueError(f"NLTVHead(graph_source='image'): image_index={self.image_index} "
                             f"is out of range for {n} input levels: wrap the backbone in "
                             f"WithImageLevel (dict(type='WithImageLevel', backbone=...))")
        position = self.image_index % n
        in_index = self.in_index if isinstance(self.in_index, (list, tuple)) else [self.in_index]
        if any(i % n == position for i in in_index):
            raise ValueError(f'NLTVHead: the base head reads level {position} (in_index='
                             f'{self.in_index}), which is the image level (image_index='
                             f'{self.image_index}): give the base head a non-negative in_index '
                             f'of a feature level')
        image = inputs[position]
        name = f'inputs[{self.image_index}] (the image level)'
        check_feature_map(image, 'NLTVHead', name=name, channels=len(self.image_mean))
        with torch.autocast(device_type=image.device.type, enabled=False):
            image = image.detach().float()
            mean = image.new_tensor(self.image_mean).view(1, -1, 1, 1)
            std = image.new_tensor(self.image_std).view(1, -1, 1, 1)
            return (image * std + mean).div_(255.0).clamp_(0.0, 1.0)

    @staticmethod
    def _resize_colours(colours: torch.Tensor, size) -> torch.Tensor:
        """Colours at the logits' resolution: area average when coarser, bilinear when
        finer, unchanged when equal."""
        size = tuple(size)
        if tuple(colours.shape[2:]) == size:
            return colours
        if size[0] <= colours.shape[2] and size[1] <= colours.shape[3]:
            return F.adaptive_avg_pool2d(colours, size)
        return F.interpolate(colours, size=size, mode='bilinear', align_corners=False)

    def loss_by_feat(self, seg_logits: torch.Tensor, batch_data_samples) -> dict:
        return self.base_head.loss_by_feat(seg_logits, batch_data_samples)

    def predict_by_feat(self, seg_logits: torch.Tensor, batch_img_metas: List[dict]):
        return self.base_head.predict_by_feat(seg_logits, batch_img_metas)

    def cls_seg(self, feat: torch.Tensor) -> torch.Tensor:
        return self.base_head.cls_seg(feat)

    def extra_repr(self) -> str:
        if self.graph_source == 'image':
            return f'graph_source={self.graph_source!r}, image_index={self.image_index}'
        return f'graph_source={self.graph_source!r}, feature_module={self.feature_module!r}'


def _check_colour_triple(name: str, value, positive: bool) -> tuple:
    """``value`` as a tuple of three reals (> 0 when ``positive``): TypeError / ValueError
    naming the argument."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f'{name} must be a sequence of 3 real numbers (one per colour '
                        f'channel, 0-255 scale), got {value!r}')
    if len(value) != 3:
        raise ValueError(f'{name} must have 3 values (one per colour channel), got '
                         f'{len(value)}: {value!r}')
    return tuple(check_real(f'{name}[{i}]', v, low=0, low_open=positive)
                 for i, v in enumerate(value))


for _name in _DELEGATED:
    setattr(NLTVHead, _name, _delegate(_name))
del _name
