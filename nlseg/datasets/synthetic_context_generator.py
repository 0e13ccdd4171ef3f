"""Generator of the synthetic long-range-context data set (the embedded demo).

Every image shows a noisy grey background, a vertical colour *key* strip along the left or
the right border, and a few identical-looking discs in the half of the image opposite the key.
All discs of an image belong to the class named by the key's colour (red, green or blue), so
the class of a disc is decided by evidence half an image away: a head that only sees a
neighbourhood of the disc sees the same pixels whatever the class, and cannot do better than
guess. Background and key pixels are class 0.

The generator is deterministic: the same seed gives the same bytes (numpy's PCG64 generator
and lossless PNG).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from .seg_folder_writer import write_seg_folders

CLASSES = ('background', 'red-keyed disc', 'green-keyed disc', 'blue-keyed disc')
PALETTE = [[0, 0, 0], [220, 20, 60], [0, 160, 0], [30, 60, 220]]
#: RGB colours of the key strip; key i marks the discs of an image as class i + 1.
KEY_COLOURS = ((255, 0, 0), (0, 255, 0), (0, 0, 255))
#: Grey level of every disc, whatever its class: discs look identical.
DISC_GREY = 200
BACKGROUND_RANGE = (40, 120)
#: Width of the key strip in pixels at size 96 (1.5 feature cells at output stride 8); other
#: sizes scale it: size // 8.
KEY_WIDTH = 12
#: Disc radii in pixels (inclusive range) at size 96; other sizes: (size // 12, size // 8).
DISC_RADIUS = (8, 12)


def default_geometry(size: int) -> tuple[int, tuple[int, int]]:
    """Key-strip width and disc radius range for an image side of ``size`` pixels: the size-96
    geometry (``KEY_WIDTH``, ``DISC_RADIUS``) scaled with the image (64: width 8, radii 5-8)."""
    return size // 8, (size // 12, size // 8)


def render_sample(rng: np.random.Generator, size: int = 96, key_width: Optional[int] = None,
                  num_discs: tuple[int, int] = (2, 4),
                  radius: Optional[tuple[int, int]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one (image, label) pair: an (size, size, 3) uint8 RGB image and an
    (size, size) uint8 label map with values in 0..3. ``key_width`` and ``radius`` default to
    :func:`default_geometry` of ``size``."""
    default_width, default_radius = default_geometry(size)
    key_width = default_width if key_width is None else key_width
    radius = default_radius if radius is None else radius
    if key_width < 1 or radius[0] < 1 or radius[1] < radius[0]:
        raise ValueError(f'key_width must be >= 1 and radius a range (lo, hi) with '
                         f'1 <= lo <= hi, got key_width={key_width}, radius={radius} '
                         f'(size={size}; the default geometry needs size >= 12)')
    if size < 4 * (key_width + radius[1]):
        raise ValueError(f'size must be >= 4 * (key_width + max radius) = '
                         f'{4 * (key_width + radius[1])}, got {size}')
    img = rng.integers(*BACKGROUND_RANGE, size=(size, size, 1), dtype=np.uint8)
    img = np.repeat(img, 3, axis=2)
    label = np.zeros((size, size), dtype=np.uint8)

    key = int(rng.integers(len(KEY_COLOURS)))
    key_on_left = bool(rng.integers(2))
    key_cols = slice(0, key_width) if key_on_left else slice(size - key_width, size)
    img[:, key_cols] = KEY_COLOURS[key]

    # Discs live in the half of the image away from the key, clear of both border strips.
    half_lo, half_hi = (size // 2, size - key_width) if key_on_left else (key_width, size // 2)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(num_discs[0], num_discs[1] + 1))):
        r = int(rng.integers(radius[0], radius[1] + 1))
        cy = int(rng.integers(r, size - r))
        cx = int(rng.integers(half_lo + r, half_hi - r))
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        img[disc] = DISC_GREY
        label[disc] = key + 1
    return img, label


def labels_from_image(img: np.ndarray, key_width: Optional[int] = None) -> np.ndarray:
    """Recover the label map from an image (used to check consistency): disc pixels take
    the class of the key strip's colour; everything else is background. ``key_width``
    defaults to that of :func:`default_geometry` for the image's side."""
    key_width = default_geometry(img.shape[1])[0] if key_width is None else key_width
    left = img[:, :key_width].reshape(-1, 3)
    right = img[:, -key_width:].reshape(-1, 3)
    key = None
    for i, colour in enumerate(KEY_COLOURS):
        if (left == colour).all() or (right == colour).all():
            key = i
    if key is None:
        raise ValueError('image carries no key strip')
    disc = (img == DISC_GREY).all(axis=2)
    disc[:, :key_width] = False
    disc[:, -key_width:] = False
    return np.where(disc, key + 1, 0).astype(np.uint8)


def generate_synthetic_context(out_dir: str, num_train: int = 400, num_val: int = 100,
                               size: int = 96, seed: int = 0) -> str:
    """Write the data set to ``out_dir`` in mmseg's BaseSegDataset layout::

        out_dir/img_dir/{train,val}/NNNN.png   RGB images
        out_dir/ann_dir/{train,val}/NNNN.png   uint8 label maps (0..3)

    The data set is written to a temporary folder and moved into place, so an interrupted
    run leaves nothing half-written. An existing ``out_dir`` is replaced.
    Returns ``out_dir``.
    """
    if num_train < 1 or num_val < 1:
        raise ValueError(f'num_train and num_val must be >= 1, got {num_train}, {num_val}')
    return write_seg_folders(out_dir, lambda rng: render_sample(rng, size=size),
                             {'train': num_train, 'val': num_val}, seed, 'synthetic_context')
