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
