"""NLTV's image-colour graph (issue 12): the WithImageLevel backbone wrapper, NLTVHead with
graph_source='image', and a whole segmentor using both; the gradient vocabulary of the block."""
from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.model import BaseModule

import nlseg  # noqa: F401  (registers the heads and WithImageLevel)
from nlseg.models import NLTVSoftmax
from nlseg.models.backbones import WithImageLevel
from nlseg.ops import knn_graph

MEAN = (120.0, 110.0, 100.0)
STD = (60.0, 50.0, 40.0)


@pytest.fixture
def mmseg_scope():
    from mmengine.registry import DefaultScope
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


class TinyBackbone(BaseModule):
    """Two levels (stride 1 and 2) with a BN, and a train() override like ResNet's."""

    def __init__(self, init_cfg=None, norm_eval=False):
        super().__init__(init_cfg)
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.down = nn.Conv2d(4, 6, 3, stride=2, padding=1)
        self.norm_eval = norm_eval

    def forward(self, x):
        a = self.stem(x)
        return (a, self.down(a))

    def train(self, mode=True):
        super().train(mode)
        if mode and self.norm_eval:
            self.stem[1].eval()
        return self


def register_tiny():
    from mmseg.registry import MODELS
    MODELS.register_module('NLSegTestTinyBackbone', module=TinyBackbone, force=True)


def fcn(in_index=1, channels=6, **kw):
    return dict(type='FCNHead', in_channels=channels, in_index=in_index, channels=4,
                num_convs=1, concat_input=False, num_classes=3,
                norm_cfg=dict(type='BN'), align_corners=False, **kw)


def image_head(**kw):
    from mmseg.registry import MODELS
    cfg = dict(type='NLTVHead', base_head=fcn(in_index=0, channels=4),
               nltv=dict(k=4, train_iters=2, test_iters=5, tol=None), graph_source='image',
               image_mean=MEAN, image_std=STD)
    cfg.update(kw)
    return MODELS.build(cfg)


def normalised(img01: torch.Tensor) -> torch.Tensor:
    """Colours in [0, 1] -> the data preprocessor's normalised batch."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (img01 * 255 - mean) / std


# ---- WithImageLevel ------------------------------------------------------------------------
def test_wrapper_appends_the_input_and_delegates(mmseg_scope):
    register_tiny()
    from mmseg.registry import MODELS
    wrapper = MODELS.build(dict(type='WithImageLevel',
                                backbone=dict(type='NLSegTestTinyBackbone', norm_eval=True)))
    assert isinstance(wrapper, WithImageLevel)
    x = torch.randn(2, 3, 8, 8)
    outs = wrapper(x)
    assert len(outs) == 3 and outs[-1] is x
    ref = wrapper.backbone(x)
    for a, b in zip(outs[:2], ref):
        torch.testing.assert_close(a, b)
    wrapper.train()
    assert wrapper.backbone.training and not wrapper.backbone.stem[1].training  # norm_eval
    assert list(wrapper.state_dict()) == list(wrapper.backbone.state_dict())


def test_wrapper_init_weights_is_the_backbones(mmseg_scope):
    register_tiny()
    from mmseg.registry import MODELS
    wrapper = MODELS.build(dict(type='WithImageLevel', backbone=dict(
        type='NLSegTestTinyBackbone', init_cfg=dict(type='Constant', layer='Conv2d', val=0.25,
                                                    bias=0.0))))
    wrapper.init_weights()
    assert torch.all(wrapper.backbone.down.weight == 0.25)
    with pytest.raises(ValueError, match='WithImageLevel has no weights of its own'):
        WithImageLevel(TinyBackbone(), init_cfg=dict(type='Constant', val=1))
    with pytest.raises(TypeError, match='backbone must be a backbone config dict'):
        WithImageLevel('ResNet')


def segmentor_cfg(wrapped: bool, graph_source: str = 'image'):
    backbone = dict(type='NLSegTestTinyBackbone')
    if wrapped:
        backbone = dict(type='WithImageLevel', backbone=backbone)
    head = dict(type='NLTVHead', base_head=fcn(), graph_source=graph_source,
                nltv=dict(k=4, train_iters=1, test_iters=3, tol=None))
    if graph_source == 'image':
        head.update(image_mean=MEAN, image_std=STD)
    return dict(type='EncoderDecoder',
                data_preprocessor=dict(type='SegDataPreProcessor', mean=list(MEAN),
                                       std=list(STD), bgr_to_rgb=False, pad_val=0,
                                       seg_pad_val=255, size=(12, 12)),
                backbone=backbone, decode_head=head,
                auxiliary_head=dict(fcn(in_index=0, channels=4), loss_decode=dict(
                    type='CrossEntropyLoss', loss_weight=0.4)),
                train_cfg=ConfigDict(), test_cfg=ConfigDict(mode='whole'))


def test_checkpoint_keys_unchanged_by_the_wrapper_both_ways(mmseg_scope):
    """A segmentor with WithImageLevel has the state_dict keys of the same segmentor
    without it (backbone.<key>), and checkpoints load both ways, strictly, with torch's and
    with mmengine's loader."""
    from mmengine.runner.checkpoint import load_state_dict
    from mmseg.registry import MODELS
    register_tiny()
    torch.manual_seed(0)
    plain = MODELS.build(segmentor_cfg(False, 'features'))
    wrapped = MODELS.build(segmentor_cfg(True, 'image'))
    assert list(plain.state_dict()) == list(wrapped.state_dict())
    assert any(k.startswith('backbone.stem.') for k in wrapped.state_dict())
    state = {k: torch.randn_like(v) if v.is_floating_point() else v
             for k, v in plain.state_dict().items()}
    wrapped.load_state_dict(state, strict=True)
    torch.testing.assert_close(wrapped.backbone.backbone.down.weight, state['backbone.down.weight'])
    back = MODELS.build(segmentor_cfg(False, 'features'))
    back.load_state_dict(wrapped.state_dict(), strict=True)
    torch.testing.assert_close(back.backbone.down.weight, state['backbone.down.weight'])
    fresh = MODELS.build(segmentor_cfg(True, 'image'))
    load_state_dict(fresh, state, strict=True)  # mmengine's loader (load_from, --resume)
    torch.testing.assert_close(fresh.backbone.backbone.stem[1].running_var,
                               state['backbone.stem.1.running_var'])


def test_segmentor_with_the_image_graph_trains_and_predicts(mmseg_scope):
    """The paper's setting end to end: EncoderDecoder(WithImageLevel(backbone),
    NLTVHead(graph_source='image')) through the data preprocessor, loss and predict."""
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample
    register_tiny()
    torch.manual_seed(0)
    model = MODELS.build(segmentor_cfg(True, 'image'))
    model.init_weights()
    samples = []
    for _ in range(2):
        s = SegDataSample(gt_sem_seg=PixelData(data=torch.randint(0, 3, (1, 12, 12))))
        s.set_metainfo(dict(img_shape=(12, 12), ori_shape=(12, 12), pad_shape=(12, 12)))
        samples.append(s)
    data = dict(inputs=[torch.randint(0, 256, (3, 12, 12), dtype=torch.uint8)
                        for _ in range(2)], data_samples=samples)
    model.train()
    batch = model.data_preprocessor(copy.deepcopy(data), True)
    losses = model.loss(**batch)
    loss = sum(v for k, v in losses.items() if 'loss' in k)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.backbone.backbone.down.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        preds = model.test_step(copy.deepcopy(data))
    assert preds[0].pred_sem_seg.data.shape == (1, 12, 12)


# ---- NLTVHead(graph_source='image') -----------------------------------------------------------
def test_image_graph_is_eq11_on_the_colours(mmseg_scope):
    torch.manual_seed(0)
    head = image_head().eval()
    colours = torch.rand(2, 3, 6, 6)
    feats = torch.randn(2, 4, 6, 6)
    out = head([feats, normalised(colours)])
    logits = head.base_head([feats])
    index, weight = knn_graph(colours, k=4)  # paper values of eq. 11 (the defaults)
    expected = NLTVSoftmax(k=4, test_iters=5, tol=None).eval()(logits, colours, log=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert head.nltv.feature_norm is None  # colours are not L2-normalised
    got_index, got_weight = head.nltv.build_graph(head._image_colours([feats,
                                                                       normalised(colours)]))
    assert torch.equal(got_index, index)
    torch.testing.assert_close(got_weight, weight, rtol=1e-5, atol=1e-6)


def test_image_colours_are_unnormalised_and_clamped(mmseg_scope):
    head = image_head()
    colours = torch.rand(1, 3, 4, 4)
    colours[0, 0, 0, 0] = 1.2  # out of range (padding, rounding) is clamped
    got = head._image_colours([torch.randn(1, 4, 4, 4), normalised(colours)])
    torch.testing.assert_close(got, colours.clamp(0, 1), rtol=0, atol=1e-6)


def test_image_is_area_averaged_to_coarser_logits(mmseg_scope):
    head = image_head()
    colours = torch.rand(1, 3, 8, 8)
    small = head._resize_colours(colours, (4, 4))
    manual = colours.view(1, 3, 4, 2, 4, 2).mean(dim=(3, 5))
    torch.testing.assert_close(small, manual, rtol=0, atol=1e-6)
    assert head._resize_colours(colours, (8, 8)) is colours
    # a head on a stride-2 level: the graph is built at the logits' (4 x 4) resolution
    out = head.eval()([torch.randn(1, 4, 4, 4), normalised(colours)])
    assert out.shape == (1, 3, 4, 4)


def test_image_graph_errors(mmseg_scope):
    head = image_head()
    with pytest.raises(ValueError, match=r'image_index=5 is out of range for 2 input levels.*'
                                         r'WithImageLevel'):
        image_head(image_index=5)([torch.randn(1, 4, 4, 4), torch.randn(1, 3, 4, 4)])
    with pytest.raises(ValueError, match=r'the base head reads level 0 .*image level'):
        image_head(image_index=0)([torch.randn(1, 4, 4, 4), torch.randn(1, 3, 4, 4)])
    with pytest.raises(ValueError, match=r'inputs\[-1\] \(the image level\) with 5 channels'):
        head([torch.randn(1, 4, 4, 4), torch.randn(1, 5, 4, 4)])


@pytest.mark.parametrize('kwargs, exc, match', [
    (dict(image_index=1.0), TypeError, r'image_index must be an integer'),
    (dict(image_mean=(1.0, 2.0)), ValueError, r'image_mean must have 3 values'),
    (dict(image_mean='rgb'), TypeError, r'image_mean must be a sequence of 3 real numbers'),
    (dict(image_std=(1.0, 0.0, 1.0)), ValueError, r'image_std\[1\] must be > 0'),
])
def test_image_arguments_checked(mmseg_scope, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        image_head(**kwargs)


def test_arguments_of_another_graph_source_warn(mmseg_scope):
    from mmseg.registry import MODELS
    with pytest.warns(UserWarning, match=r"image_mean have no effect with graph_source="
                                         r"'features'"):
        MODELS.build(dict(type='NLTVHead', base_head=fcn(), nltv=dict(k=3),
                          image_mean=MEAN))
    with pytest.warns(UserWarning, match=r"feature_module / resize_features have no effect "
                                         r"with graph_source='image'"):
        image_head(resize_features=True)
    with warnings.catch_warnings(record=True) as caught:  # (mmseg warns about build_loss)
        warnings.simplefilter('always')
        image_head()
        MODELS.build(dict(type='NLTVHead', base_head=fcn(), nltv=dict(k=3)))
    assert not [w for w in caught if 'no effect' in str(w.message)]


# ---- gradient vocabulary of the block ------------------------------------------------------------
@pytest.mark.parametrize('old, new', [('unrolled', 'bptt'), ('last_step', 'one_step')])
def test_block_deprecated_grad_names(old, new):
    with pytest.warns(DeprecationWarning, match=rf"NLTVSoftmax: grad='{old}' is deprecated, "
                                                rf"use grad='{new}'"):
        block = NLTVSoftmax(k=3, grad=old)
    assert block.grad == new


def test_block_max_iters_beside_test_iters_warns():
    with pytest.warns(UserWarning, match=r'max_iters=10 has no effect with test_iters=5'):
        NLTVSoftmax(k=3, test_iters=5, max_iters=10)
