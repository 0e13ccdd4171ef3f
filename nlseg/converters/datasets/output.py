"""Writing a converted data set: lossless label masks, and the output folder written
atomically (staged in a temporary folder beside it, moved into place at the end)."""
from __future__ import annotations

import contextlib
import os
import os.path as osp
import shutil
import tempfile
from typing import Iterator

import numpy as np

from ..errors import ConversionError

__all__ = ['write_mask', 'check_output', 'staged_output']


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
