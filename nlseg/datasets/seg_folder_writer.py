"""Atomic writer of a generated data set in mmseg's ``BaseSegDataset`` folder layout."""
from __future__ import annotations

import os
import os.path as osp
import shutil
import tempfile
from typing import Callable

import numpy as np

__all__ = ['write_seg_folders']


def write_seg_folders(out_dir: str, render: Callable[[np.random.Generator],
                                                     tuple[np.ndarray, np.ndarray]],
                      counts: dict[str, int], seed: int, prefix: str) -> str:
    """Write ``counts[split]`` samples of ``render(rng)`` per split to::

        out_dir/img_dir/<split>/NNNN.png   RGB images (``render``'s (H, W, 3) uint8 RGB)
        out_dir/ann_dir/<split>/NNNN.png   uint8 label maps

    drawn in order from one numpy PCG64 generator seeded with ``seed`` (same seed, same
    bytes: lossless PNG). The folders are written under a temporary ``.<prefix>-*`` folder
    beside ``out_dir`` and moved into place, so an interrupted run leaves nothing
    half-written; an existing ``out_dir`` is replaced. Returns ``out_dir``.
    """
    import cv2

    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{prefix}-', dir=parent)
    try:
        rng = np.random.Generator(np.random.PCG64(seed))
        for split, count in counts.items():
            os.makedirs(osp.join(tmp, 'img_dir', split))
            os.makedirs(osp.join(tmp, 'ann_dir', split))
            for i in range(count):
                img, label = render(rng)
                name = f'{i:04d}.png'
                cv2.imwrite(osp.join(tmp, 'img_dir', split, name), img[:, :, ::-1])
                cv2.imwrite(osp.join(tmp, 'ann_dir', split, name), label)
        if osp.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
