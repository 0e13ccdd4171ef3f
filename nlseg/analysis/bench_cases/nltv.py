"""NLTV-regularised softmax (issue 5): NLTVHead over mmseg's FCNHead, 19 classes.

Graph from the FCN head's last feature map (L2-normalised), k = 10, paper solver values
(lam = 3, tau = 0.03, eps = 0.5). Inference is capped at 50 iterations here (``test_iters``;
the default runs until the duality gap reaches 1e-5, at most 1500 iterations), so that the
inference time is that of the graph plus 50 iterations. The anchor is ``mmseg_fcnhead`` in
``anchors.py`` (num_convs=2, concat_input=True, the same base head).
"""
from __future__ import annotations

from typing import Callable

import torch

NUM_CLASSES = 19
NORM = dict(type='BN', requires_grad=True)


def cases(in_channels: int, channels: int) -> dict[str, Callable[[], torch.nn.Module]]:
    import nlseg  # noqa: F401  (registers NLTVHead)
    from mmseg.registry import MODELS

    base = dict(type='FCNHead', in_channels=in_channels, channels=channels, num_convs=2,
                concat_input=True, num_classes=NUM_CLASSES, norm_cfg=NORM,
                align_corners=False)

    def head(**nltv):
        cfg = dict(type='NLTVHead', base_head=base,
                   nltv=dict(k=10, lam=3.0, tau=0.03, eps=0.5, test_iters=50, **nltv))
        return lambda: MODELS.build(cfg)

    return {
        'nltv_fcn_bptt3': head(train_iters=3, grad='bptt'),
        'nltv_fcn_one_step10': head(train_iters=10, grad='one_step'),
        'nltv_fcn_learnable_graph': head(train_iters=3, grad='bptt', learnable_graph=True),
    }
