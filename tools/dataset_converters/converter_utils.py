"""Helpers shared by the data set converters: errors, image reading, atomic output.

The converters are scripts (``python tools/dataset_converters/camvid.py ...``); Python puts
their folder on ``sys.path``, so they import this module by its plain name.
"""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import shutil
import sys
import tempfile
from typing import Callable, Iterator, Sequence

import numpy as np

__all__ = ['ConversionError', 'staged_output', 'read_image_size', 'read_grey_mask',
           'write_mask', 'require_source', 'list_files', 'describe_names', 'run_cli']


class ConversionError(Exception):
    """A problem with the source data or the arguments; the message says which."""


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


def write_mask(path: str, label: np.ndarray) -> None:
    """Write an (H, W) uint8 label map as a lossless single-channel PNG."""
    from PIL import Image
    Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8)).save(path)


def check_output(out: str, overwrite: bool) -> None:
    """Refuse a non-empty existing ``out`` unless ``overwrite``."""
    if osp.exists(out) and not overwrite:
        if not osp.isdir(out) or os.listdir(out):
            raise ConversionError(
                f'output {out!r} already exists; pass --overwrite to replace it')


@contextlib.contextmanager
def staged_output(out: str, overwrite: bool = False) -> Iterator[str]:
    """Yield a temporary folder beside ``out``; move it to ``out`` when the block ends
    without an exception, delete it otherwise.

    So an interrupted or failed conversion leaves no half-written data set: either the old
    ``out`` (if any) or the complete new one.
    """
    out = osp.abspath(out)
    check_output(out, overwrite)
    parent = osp.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}-tmp-', dir=parent)
    try:
        yield tmp
        check_output(out, overwrite)
        if osp.exists(out):
            old = tempfile.mkdtemp(prefix=f'.{osp.basename(out)}-old-', dir=parent)
            os.replace(out, osp.join(old, 'data'))
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def run_cli(main: Callable[[], object]) -> None:
    """Run ``main``; print a :class:`ConversionError` as ``error: ...`` and exit with 1."""
    try:
        main()
    except ConversionError as exc:
        print(f'error: {exc}', file=sys.stderr)
        sys.exit(1)
