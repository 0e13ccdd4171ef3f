"""Shared test helpers: tiny EncoderDecoder models and random batches, all on CPU."""
from __future__ import annotations

import copy
from typing import Any

import torch


def tiny_backbone(out_channels_last: int = 512) -> dict:
    """A ResNetV1c-18 with output stride 8 (dilated last stages), no pretrained weights."""
    return dict(
        type='ResNetV1c',
        depth=18,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        contract_dilation=True,
        pretrained=None)


def encoder_decoder_cfg(decode_head: dict, auxiliary_head: dict | None = None) -> dict:
    """An mmseg EncoderDecoder config around ``decode_head`` with a ResNetV1c-18 backbone.

    ResNet-18 stage channels are 64, 128, 256, 512; use ``in_channels=512, in_index=3``.
    """
    cfg = dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255),
        backbone=tiny_backbone(),
        decode_head=copy.deepcopy(decode_head),
        train_cfg=dict(),
        test_cfg=dict(mode='whole'))
    if auxiliary_head is not None:
        cfg['auxiliary_head'] = auxiliary_head
    return cfg


def random_batch(num_images: int = 2, size: int = 64, num_classes: int = 4,
                 seed: int = 0) -> dict[str, Any]:
    """A data batch as mmseg's dataloader yields it: uint8 images and SegDataSamples."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(num_images):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        sample = SegDataSample()
        label = torch.randint(0, num_classes, (1, size, size), generator=g)
        sample.gt_sem_seg = PixelData(data=label)
        sample.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                                 pad_shape=(size, size)))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def train_iterations(decode_head: dict, iters: int = 2, size: int = 64,
                     num_classes: int = 4) -> list[float]:
    """Build an EncoderDecoder around ``decode_head``, run ``iters`` SGD train steps and
    return the total loss of each step. ``decode_head`` must take ``in_channels=512,
    in_index=3`` (the tiny ResNet's last stage)."""
    import nlseg  # noqa: F401  (registers the heads)
    from mmengine.optim import OptimWrapper
    from mmseg.registry import MODELS

    torch.manual_seed(0)
    model = MODELS.build(encoder_decoder_cfg(decode_head))
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    losses = []
    for i in range(iters):
        log_vars = model.train_step(random_batch(size=size, num_classes=num_classes, seed=i),
                                    optim)
        losses.append(float(log_vars['loss']))
    return losses
