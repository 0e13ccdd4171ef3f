"""Reading and checking the source folder of a data set converter: the folder itself, its
files, their images and label masks, and names for error messages."""
from __future__ import annotations

import os
import os.path as osp
from typing import Sequence

import numpy as np

from ..errors import ConversionError

__all__ = ['require_source', 'list_files', 'describe_names', 'read_image_size',
           'read_grey_mask']


def require_source(src: str) -> None:
    """Raise :class:`ConversionError` when ``src`` is not an existing, non-empty folder."""
    if not osp.exists(src):
        raise ConversionError(f'source folder {src!r} does not exist')
    if not osp.isdir(src):
        raise ConversionError(f'source {src!r} is not a folder')
    if not os.listdir(src):
        raise ConversionError(f'source folder {src!r} is empty')


def list_files(folder: str, suffix: str) -> list[str]:
    """Sorted names of the regular files in ``folder`` whose names end with ``suffix``
    (case-insensitive)."""
    return sorted(name for name in os.listdir(folder)
                  if name.lower().endswith(suffix.lower())
                  and osp.isfile(osp.join(folder, name)))


def describe_names(names: Sequence[str], limit: int = 10) -> str:
    """``'a, b, c'`` or ``'a, b, ... (12 in all)'`` for error messages."""
    names = list(names)
    shown = ', '.join(names[:limit])
    return shown if len(names) <= limit else f'{shown}, ... ({len(names)} in all)'


def read_image_size(path: str) -> tuple[int, int]:
    """Decode the image at ``path`` completely and return its (height, width)."""
    from PIL import Image
    try:
        with Image.open(path) as img:
            img.load()
            return img.height, img.width
    except Exception as exc:  # PIL raises several types for bad files
        raise ConversionError(f'cannot read image {path!r}: {exc}') from exc


def read_grey_mask(path: str) -> np.ndarray:
    """Read a label mask as an (H, W) uint8 array of its grey values / label ids.

    Single-channel images are returned as stored; colour images are accepted only when
    their three channels are equal (a grey mask saved as RGB).
    """
    from PIL import Image
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode == 'P':
                img = img.convert('RGB')
            arr = np.asarray(img)
    except Exception as exc:
        raise ConversionError(f'cannot read mask {path!r}: {exc}') from exc
    if arr.ndim == 3:
        rgb = arr[..., :3]
        if not ((rgb == rgb[..., :1]).all()):
            raise ConversionError(f'mask {path!r} is a colour image; expected grey levels')
        arr = rgb[..., 0]
    if arr.dtype != np.uint8:
        if arr.dtype == bool or arr.max(initial=0) <= 255:
            arr = arr.astype(np.uint8)
        else:
            raise ConversionError(f'mask {path!r} holds values above 255 ({arr.dtype})')
    return arr
