"""Synthetic source folders of the data set converter tests: SegNet's CamVid layout and WBC
Dataset 2's, small random images and labels."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
from PIL import Image

H, W = 12, 16


def save_png(path: str, arr: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


def random_image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


CAMVID_SPLITS = {'train': ['a.png', 'b.png'], 'val': ['c.png'], 'test': ['d.png']}


def make_camvid(root: str) -> dict[str, np.ndarray]:
    """SegNet layout; every label holds ids 0..11 (11 = void). Returns the labels."""
    labels = {}
    for i, (split, names) in enumerate(CAMVID_SPLITS.items()):
        for j, name in enumerate(names):
            seed = 10 * i + j
            label = np.random.default_rng(seed).integers(0, 12, (H, W), dtype=np.uint8)
            label[0, 0], label[0, 1] = 11, 10  # void and the last class in every label
            save_png(osp.join(root, split, name), random_image(seed))
            save_png(osp.join(root, f'{split}annot', name), label)
            labels[f'{split}/{name}'] = label
    return labels


def make_wbc(root: str, n: int = 5) -> dict[str, np.ndarray]:
    """``NNN.bmp`` + ``NNN.png`` with grey levels 0/128/255; mask 002 carries strays."""
    masks = {}
    for i in range(1, n + 1):
        stem = f'{i:03d}'
        mask = np.zeros((H, W), dtype=np.uint8)
        mask[3:9, 4:12] = 128
        mask[5:7, 6:10] = 255
        if stem == '002':
            mask[0, :3] = [3, 120, 250]  # strays near 0, 128, 255
        save_png(osp.join(root, f'{stem}.bmp'), random_image(i))
        save_png(osp.join(root, f'{stem}.png'), mask)
        masks[stem] = mask
    return masks
