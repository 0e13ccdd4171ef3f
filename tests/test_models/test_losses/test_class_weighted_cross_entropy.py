"""ClassWeightedCrossEntropyLoss: mmseg's weighted cross-entropy, without its IndexError on
ignored pixels, equal to PyTorch's weighted mean."""
import pytest
import torch
import torch.nn.functional as F

import nlseg  # noqa: F401  (registers the loss)
from mmseg.registry import MODELS

WEIGHTS = [0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478,
           7.3614]  # SegNet's CamVid weights


def build(**kw):
    return MODELS.build(dict(type='ClassWeightedCrossEntropyLoss', class_weight=WEIGHTS,
                             loss_weight=1.0, **kw))


def test_equals_pytorch_weighted_mean_with_ignored_pixels():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 11, 6, 7, generator=g)
    label = torch.randint(0, 11, (2, 6, 7), generator=g)
    label[0, :2] = 255  # void pixels, as CamVid's
    loss = build()(logits, label, ignore_index=255)
    expected = F.cross_entropy(logits, label, weight=torch.tensor(WEIGHTS), ignore_index=255)
    assert torch.allclose(loss, expected)
    # mmseg 1.2.2's own loss fails on the same batch (the reason for this class)
    mmseg_loss = MODELS.build(dict(type='CrossEntropyLoss', class_weight=WEIGHTS))
    with pytest.raises(IndexError):
        mmseg_loss(logits, label, ignore_index=255)
    # without ignored pixels it is mmseg's loss
    clean = label.clamp(max=10)
    assert torch.allclose(build()(logits, clean, ignore_index=255),
                          mmseg_loss(logits, clean, ignore_index=255))


def test_gradients_and_loss_name():
    logits = torch.randn(1, 11, 4, 4, requires_grad=True)
    label = torch.full((1, 4, 4), 255)
    label[0, 0, 0] = 3
    loss = build(loss_name='loss_ce')
    assert loss.loss_name == 'loss_ce'
    loss(logits, label, ignore_index=255).backward()
    assert torch.isfinite(logits.grad).all() and logits.grad[0, :, 0, 0].abs().sum() > 0


@pytest.mark.parametrize('kw, match', [(dict(class_weight=None), 'needs class_weight'),
                                       (dict(use_sigmoid=True), 'use_sigmoid')])
def test_bad_arguments(kw, match):
    cfg = dict(type='ClassWeightedCrossEntropyLoss', class_weight=WEIGHTS)
    cfg.update(kw)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)
