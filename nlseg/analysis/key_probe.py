"""Probe a trained key-task demo model: does the key reach the discs, and where is it lost?

For a checkpoint of a ``configs/demo/*_synthetic-context-*.py`` config, runs the val images
(eval mode) and reads, at the feature grid (output stride 8), the feature maps at three
points of the decode head:

* ``block``: the output of the global-context block (the head's ``context_block``: the
  NL-family block of ContextFCNHead, the Hamburger of HamburgerHead; absent for FCN);
* ``block_delta``: block output minus block input (what the block adds: its contribution);
* ``classifier``: the input of the 1x1 classifier (``conv_seg``).

At each point, over the "disc cells" (grid cells whose pixels are >= 50 % disc):

* ``share``: the between-key-colour variance of the per-image mean disc feature over the
  total variance of the disc-cell features (summed over channels): the fraction of the
  signal at the discs that depends on the key (0: none, 1: all of it);
* ``probe``: held-out accuracy of a ridge classifier that predicts the key colour from ONE
  disc cell's feature (trained on the disc cells of the first half of the val images, tested
  on the second half; chance is about 0.33).

A head that reads the key has a high probe accuracy at ``classifier``; a head whose block
carries the key but loses it downstream has high values at ``block`` and low ones at
``classifier``; a block whose contribution holds the key (``block_delta``) while its output
does not (``block``) adds it to a much larger local signal.

    python tools/analysis/probe_key_signal.py CONFIG CHECKPOINT [--data-root DIR]

(the command line over :func:`probe`).
"""
from __future__ import annotations

import os
import os.path as osp
from typing import Optional

import numpy as np

__all__ = ['NUM_KEYS', 'key_share', 'ridge_probe', 'disc_cells', 'probe']

#: the disc classes are 1..3 (red-, green-, blue-keyed); background is 0
NUM_KEYS = 3


def key_share(features: np.ndarray, keys: np.ndarray, images: np.ndarray) -> float:
    """Between-key variance of the per-image mean feature over the total variance of the
    features (rows of ``features``: disc cells; ``keys``/``images``: their key and image)."""
    total = features.var(axis=0).sum()
    if total <= 0:
        return 0.0
    ids = np.unique(images)
    means = np.stack([features[images == i].mean(axis=0) for i in ids])
    image_keys = np.array([keys[images == i][0] for i in ids])
    grand = means.mean(axis=0)
    between = sum((image_keys == k).mean() * ((means[image_keys == k].mean(axis=0) - grand)
                                              ** 2).sum()
                  for k in np.unique(image_keys))
    return float(between / total)


def ridge_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, alpha: float = 1.0) -> float:
    """Held-out accuracy of a one-vs-rest ridge classifier (standardised features)."""
    if len(train_x) == 0 or len(test_x) == 0:
        return float('nan')
    mean, std = train_x.mean(axis=0), train_x.std(axis=0) + 1e-6
    a = np.hstack([(train_x - mean) / std, np.ones((len(train_x), 1))])
    b = np.hstack([(test_x - mean) / std, np.ones((len(test_x), 1))])
    targets = np.eye(NUM_KEYS)[train_y]
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ targets)
    return float(((b @ w).argmax(axis=1) == test_y).mean())


def disc_cells(label: np.ndarray, stride: int) -> tuple[np.ndarray, Optional[int]]:
    """(mask of the grid cells >= 50 % disc, the image's key index 0..2 or None)."""
    h, w = label.shape[0] // stride, label.shape[1] // stride
    cells = label[:h * stride, :w * stride].reshape(h, stride, w, stride)
    disc = (cells > 0).mean(axis=(1, 3)) >= 0.5
    classes = np.unique(label[label > 0])
    return disc, (int(classes[0]) - 1 if len(classes) else None)


def probe(config: str, checkpoint: str, data_root: Optional[str] = None,
          device: str = 'cpu') -> dict:
    """The share and probe accuracy at each probe point (see the module docstring)."""
    import cv2
    import torch
    from mmseg.apis import init_model

    import nlseg  # noqa: F401
    model = init_model(config, checkpoint, device=device)
    head = model.decode_head
    block = getattr(head, 'context_block', None)  # None: a head without one (FCN)
    captured: dict[str, torch.Tensor] = {}
    hooks = [head.conv_seg.register_forward_pre_hook(
        lambda m, args: captured.__setitem__('classifier', args[0].detach()))]
    if block is not None:
        def block_hook(module, args, output):
            captured['block'] = output.detach()
            captured['block_delta'] = (output - args[0]).detach()
        hooks.append(block.register_forward_hook(block_hook))
    root = data_root or model.cfg.val_dataloader.dataset.data_root
    img_dir, ann_dir = osp.join(root, 'img_dir', 'val'), osp.join(root, 'ann_dir', 'val')
    names = sorted(os.listdir(img_dir))
    rows: dict[str, list] = {}
    keys, images = [], []
    with torch.no_grad():
        for index, name in enumerate(names):
            img = cv2.imread(osp.join(img_dir, name))  # BGR, as the test pipeline loads it
            label = cv2.imread(osp.join(ann_dir, name), cv2.IMREAD_UNCHANGED)
            x = torch.from_numpy(img).permute(2, 0, 1).float()[None]
            batch = model.data_preprocessor(dict(inputs=[x[0]]), False)['inputs']
            model.decode_head.forward(model.extract_feat(batch))
            stride = img.shape[0] // captured['classifier'].shape[2]
            disc, key = disc_cells(label, stride)
            if key is None or not disc.any():
                continue
            for point, feat in captured.items():
                f = feat[0].permute(1, 2, 0).cpu().numpy()[disc]
                rows.setdefault(point, []).append(f)
            keys += [key] * int(disc.sum())
            images += [index] * int(disc.sum())
    for h in hooks:
        h.remove()
    keys_arr, images_arr = np.array(keys), np.array(images)
    first = images_arr < len(names) // 2
    result = {}
    for point in ('block', 'block_delta', 'classifier'):
        if point not in rows:
            continue
        feats = np.concatenate(rows[point])
        result[point] = dict(
            share=round(key_share(feats, keys_arr, images_arr), 4),
            probe=round(ridge_probe(feats[first], keys_arr[first], feats[~first],
                                    keys_arr[~first]), 3))
    return result
