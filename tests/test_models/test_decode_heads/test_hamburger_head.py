"""HamburgerHead in mmseg: registry, multi-level input, training in an EncoderDecoder."""
import math

import pytest
import torch

from mmengine.registry import DefaultScope
from mmseg.registry import MODELS

import nlseg  # noqa: F401  (registers the heads)

from tests.helpers import encoder_decoder_cfg, random_batch


def train_two_iterations(decode_head, size=64):
    """2 SGD steps of an EncoderDecoder (tests.helpers' model) around ``decode_head``.

    Like ``tests.helpers.train_iterations``, plus the two settings its model lacks in
    mmseg 1.2.2: the preprocessor's ``size`` (``stack_batch`` asserts on size or
    size_divisor) and the ``mmseg`` default scope (to find ``SegDataPreProcessor``)."""
    from mmengine.optim import OptimWrapper

    cfg = encoder_decoder_cfg(decode_head)
    cfg['data_preprocessor']['size'] = (size, size)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmseg'):
        model = MODELS.build(cfg).train()
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
        return [float(model.train_step(random_batch(size=size, seed=i), optim)['loss'])
                for i in range(2)]


def head_cfg(**kwargs):
    cfg = dict(type='HamburgerHead', in_channels=512, in_index=3, channels=16,
               ham_channels=32, ham_kwargs=dict(MD_R=4), num_classes=4, dropout_ratio=0.1,
               norm_cfg=dict(type='BN', requires_grad=True), align_corners=False,
               loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0))
    cfg.update(kwargs)
    return cfg


@pytest.mark.parametrize('ham_type', ['NMF', 'VQ', 'CD'])
def test_trains_two_iterations_in_encoder_decoder(ham_type):
    losses = train_two_iterations(head_cfg(ham_type=ham_type))
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)


def test_structure_and_eval_determinism():
    head = MODELS.build(head_cfg(in_channels=8, in_index=0)).eval()
    assert head.squeeze.conv.kernel_size == (3, 3) and head.align.conv.kernel_size == (3, 3)
    assert head.hamburger.ham_type == 'NMF' and head.hamburger.ham.R == 4
    x = [torch.randn(2, 8, 9, 9)]
    with torch.no_grad():
        out = head(x)
        assert out.shape == (2, 4, 9, 9)
        assert torch.equal(head(x), out)


def test_multi_level_input_is_resized_and_concatenated():
    head = MODELS.build(head_cfg(in_channels=[4, 6], in_index=[1, 2], ham_type='CD')).eval()
    assert head.input_transform == 'multiple_select'
    assert head.squeeze.conv.in_channels == 10
    inputs = [torch.randn(1, 2, 12, 12), torch.randn(1, 4, 8, 8), torch.randn(1, 6, 4, 4)]
    with torch.no_grad():
        assert head(inputs).shape == (1, 4, 8, 8)


def test_bad_ham_type():
    with pytest.raises(ValueError, match='NMF'):
        MODELS.build(head_cfg(ham_type='PCA'))


# ============================================ kernel_size=1: mmseg's LightHamHead, trained
def lightham_pair(levels):
    """mmseg's LightHamHead and the HamburgerHead of its form (1x1 squeeze/align, trailing
    ReLU, BPTT through the NMF steps) with the same weights, in float64."""
    from mmseg.models.decode_heads import LightHamHead

    args = dict(ham_channels=16, channels=6, num_classes=3, dropout_ratio=0.0,
                norm_cfg=dict(type='BN'), **levels)
    torch.manual_seed(0)
    light = LightHamHead(ham_kwargs=dict(MD_R=4), **args).double()
    ours = MODELS.build(dict(type='HamburgerHead', kernel_size=1, trailing_relu=True,
                             ham_kwargs=dict(MD_R=4, grad='bptt'), **args)).double()
    renames = {'hamburger.ham_in.': 'hamburger.lower_bread.',
               'hamburger.ham_out.': 'hamburger.upper_bread.'}
    state = {}
    for key, value in light.state_dict().items():
        for old, new in renames.items():
            key = key.replace(old, new)
        state[key] = value
    ours.load_state_dict(state, strict=True)
    return light, ours


@pytest.mark.parametrize('levels', [dict(in_channels=[8], in_index=[0]),
                                    dict(in_channels=[8, 5], in_index=[0, 1])])
def test_kernel_size_1_trains_as_mmseg_lightham(levels, monkeypatch):
    """Same outputs, input gradients and parameter gradients as LightHamHead in training
    (fresh random bases per forward, the same draw given to both)."""
    from mmseg.models.decode_heads.ham_head import NMF2D

    light, ours = lightham_pair(levels)
    assert ours.squeeze.conv.kernel_size == (1, 1) and ours.align.conv.kernel_size == (1, 1)
    assert ours.squeeze.conv.padding == (0, 0)
    assert sorted(ours.state_dict()) == sorted(
        k.replace('ham_in', 'lower_bread').replace('ham_out', 'upper_bread')
        for k in light.state_dict())

    def draw(self, B, S, D, R, device=None):  # nlseg's training draw: torch.rand, normalised
        return torch.nn.functional.normalize(torch.rand((B * S, D, R)), dim=1).double()
    monkeypatch.setattr(NMF2D, '_build_bases', draw)
    g = torch.Generator().manual_seed(1)
    inputs = [torch.rand(2, c, 6 - i, 6 - i, generator=g, dtype=torch.float64)
              .requires_grad_() for i, c in enumerate(levels['in_channels'])]
    outs, grads = [], []
    for head in (light, ours):
        head.train()
        torch.manual_seed(7)
        out = head(inputs)
        outs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), [*inputs, *head.parameters()]))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-9, atol=1e-11)
    for mine, theirs in zip(grads[1], grads[0]):
        torch.testing.assert_close(mine, theirs, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize('kernel_size, error', [(2, ValueError), (0, ValueError),
                                                (1.0, TypeError)])
def test_bad_kernel_size_names_the_argument(kernel_size, error):
    with pytest.raises(error, match='kernel_size'):
        MODELS.build(head_cfg(in_channels=8, in_index=0, kernel_size=kernel_size))
