"""Convert SegNet's copy of CamVid for :class:`nlseg.datasets.CamVidDataset`.

Usage::

    python tools/dataset_converters/camvid.py SRC --out data/camvid [--overwrite]

``SRC`` is SegNet's ``CamVid`` folder with ``train/ trainannot/ val/ valannot/ test/
testannot/`` (images and labels share their basenames, ``.png``). The converter checks that
every image has its label and every label its image, that sizes agree and that label values
are class ids 0..10 or void 11; it copies the images, maps void 11 to 255 (ignored), and
writes the same layout under ``--out``. Output is written to a temporary folder beside
``--out`` and moved into place at the end, so an interrupted run leaves nothing half-written.
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import shutil
from typing import Sequence

import numpy as np

from ..errors import ConversionError
from .output import staged_output, write_mask
from .source import describe_names, list_files, read_grey_mask, read_image_size, require_source

#: (image folder, label folder) of each split, as in SegNet's CamVid.
SPLITS = (('train', 'trainannot'), ('val', 'valannot'), ('test', 'testannot'))
NUM_CLASSES = 11
VOID = 11
IGNORE_INDEX = 255


def pair_split(src: str, img_folder: str, ann_folder: str) -> list[str]:
    """Names (``*.png``) present in both ``src/img_folder`` and ``src/ann_folder``.

    Raises :class:`ConversionError` naming a missing folder, an empty split, or the images
    without a label and the labels without an image.
    """
    img_dir, ann_dir = osp.join(src, img_folder), osp.join(src, ann_folder)
    for folder in (img_dir, ann_dir):
        if not osp.isdir(folder):
            raise ConversionError(f'folder {folder!r} is missing (expected SegNet\'s '
                                  f'layout {", ".join(f"{a}/ {b}/" for a, b in SPLITS)})')
    images, labels = set(list_files(img_dir, '.png')), set(list_files(ann_dir, '.png'))
    if not images and not labels:
        raise ConversionError(f'split {img_folder!r} is empty: no .png files in {img_dir!r} '
                              f'or {ann_dir!r}')
    problems = []
    if images - labels:
        problems.append(f'{len(images - labels)} image(s) in {img_folder}/ without a label '
                        f'in {ann_folder}/: {describe_names(sorted(images - labels))}')
    if labels - images:
        problems.append(f'{len(labels - images)} label(s) in {ann_folder}/ without an image '
                        f'in {img_folder}/: {describe_names(sorted(labels - images))}')
    if problems:
        raise ConversionError('unpaired files: ' + '; '.join(problems))
    return sorted(images)


def map_void(label: np.ndarray, name: str = 'label') -> np.ndarray:
    """Map SegNet's void label 11 to 255; class ids 0..10 (and 255) are kept.

    Raises :class:`ConversionError` for any other value.
    """
    valid = (label < NUM_CLASSES) | (label == VOID) | (label == IGNORE_INDEX)
    if not valid.all():
        bad = np.unique(label[~valid])
        raise ConversionError(
            f'{name}: label values {describe_names([str(v) for v in bad])} are not CamVid '
            f'class ids (0..{NUM_CLASSES - 1}, void {VOID})')
    out = label.astype(np.uint8, copy=True)
    out[label == VOID] = IGNORE_INDEX
    return out


def convert_camvid(src: str, out: str, overwrite: bool = False) -> dict[str, int]:
    """Convert SegNet's CamVid at ``src`` into ``out``; return the image count per split."""
    from mmengine.utils import track_iter_progress

    require_source(src)
    pairs = {img: pair_split(src, img, ann) for img, ann in SPLITS}
    counts = {}
    with staged_output(out, overwrite) as tmp:
        for img_folder, ann_folder in SPLITS:
            names = pairs[img_folder]
            os.makedirs(osp.join(tmp, img_folder))
            os.makedirs(osp.join(tmp, ann_folder))
            print(f'{img_folder}: {len(names)} images')
            for name in track_iter_progress(names):
                img_path = osp.join(src, img_folder, name)
                ann_path = osp.join(src, ann_folder, name)
                size = read_image_size(img_path)
                label = read_grey_mask(ann_path)
                if label.shape != size:
                    raise ConversionError(f'{ann_path!r} is {label.shape[0]}x{label.shape[1]}'
                                          f' but its image is {size[0]}x{size[1]}')
                shutil.copyfile(img_path, osp.join(tmp, img_folder, name))
                write_mask(osp.join(tmp, ann_folder, name), map_void(label, ann_path))
            counts[img_folder] = len(names)
    print(f'wrote {out}: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
    return counts


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert SegNet\'s CamVid (11 classes) for nlseg\'s CamVidDataset: '
                    'check image/label pairs, map void 11 to 255.')
    parser.add_argument('src', help='SegNet CamVid folder with train/ trainannot/ val/ '
                                    'valannot/ test/ testannot/')
    parser.add_argument('--out', default='data/camvid', help='output folder')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing output folder')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    convert_camvid(args.src, args.out, overwrite=args.overwrite)

