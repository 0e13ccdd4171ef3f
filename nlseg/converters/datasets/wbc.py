"""Convert White Blood Cell Dataset 2 (Zheng et al. 2018) for :class:`nlseg.datasets.WBCDataset`.

Usage::

    python tools/dataset_converters/wbc.py SRC --out data/wbc [--train 60 --seed 0]
        [--strays nearest|ignore] [--ambiguity-margin 16] [--max-stray-distance D]
        [--overwrite]

``SRC`` holds ``NNN.bmp`` images and their ``NNN.png`` masks in one folder. Mask grey levels
0 (background), 128 (cytoplasm) and 255 (nucleus) become labels 0, 1, 2. A few masks carry
stray grey values (the published copy: 304 pixels in five masks, values 2-50, all far nearer
0 than 128); they are mapped to the nearest level (``--strays nearest``) or to 255, ignored
in training and evaluation (``--strays ignore``), and the converter reports per mask how
many pixels of which values it changed. A value is refused only when it is truly ambiguous:
its distances to the two nearest levels differ by less than ``--ambiguity-margin`` (default
16 grey levels: 57-71 between background and cytoplasm, 184-199 between cytoplasm and
nucleus), or, when ``--max-stray-distance`` is given, when it is farther than that from
every level. The images are split into train and val with a seeded shuffle (the NLTV
paper used 60 train / 40 test images) and written in mmseg's classic layout::

    OUT/img_dir/{train,val}/NNN.bmp   OUT/ann_dir/{train,val}/NNN.png   OUT/{train,val}.txt

Output is written to a temporary folder beside ``--out`` and moved into place at the end, so
an interrupted run leaves nothing half-written.
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

#: Mask grey level of each class: background, cytoplasm, nucleus.
GREY_LEVELS = (0, 128, 255)
IGNORE_INDEX = 255
STRAY_MODES = ('nearest', 'ignore')


def pair_wbc(src: str) -> list[str]:
    """Stems ``NNN`` with both ``NNN.bmp`` and ``NNN.png`` in ``src``.

    Raises :class:`ConversionError` when there are none, or naming the images without a mask
    and the masks without an image.
    """
    images = {osp.splitext(n)[0] for n in list_files(src, '.bmp')}
    masks = {osp.splitext(n)[0] for n in list_files(src, '.png')}
    if not images and not masks:
        raise ConversionError(f'no .bmp images or .png masks in {src!r}')
    problems = []
    if images - masks:
        problems.append(f'{len(images - masks)} image(s) without a .png mask: '
                        f'{describe_names([s + ".bmp" for s in sorted(images - masks)])}')
    if masks - images:
        problems.append(f'{len(masks - images)} mask(s) without a .bmp image: '
                        f'{describe_names([s + ".png" for s in sorted(masks - images)])}')
    if problems:
        raise ConversionError('unpaired files: ' + '; '.join(problems))
    return sorted(images)


def map_grey_levels(mask: np.ndarray, strays: str = 'nearest',
                    max_distance: int | None = None,
                    ambiguity_margin: int = 16) -> tuple[np.ndarray, int]:
    """Map grey levels 0/128/255 to labels 0/1/2.

    Other ("stray") values go to the nearest level's label (``strays='nearest'``) or to 255
    (``strays='ignore'``). Returns the label map and the number of stray pixels. Raises
    :class:`ValueError` naming the values that are ambiguous (their distances to the two
    nearest levels differ by less than ``ambiguity_margin``) or, with ``max_distance``,
    farther than that from every level.
    """
    if strays not in STRAY_MODES:
        raise ValueError(f'strays must be one of {STRAY_MODES}, got {strays!r}')
    levels = np.asarray(GREY_LEVELS, dtype=np.int32)
    dist = np.abs(mask.astype(np.int32)[..., None] - levels)
    nearest = dist.argmin(axis=-1)
    two = np.sort(dist, axis=-1)[..., :2]
    ambiguous = two[..., 1] - two[..., 0] < ambiguity_margin
    if ambiguous.any():
        values = np.unique(mask[ambiguous])
        raise ValueError(
            f'grey values {describe_names([str(v) for v in values])} are ambiguous: within '
            f'{ambiguity_margin} grey levels as near to a second level of {GREY_LEVELS} as '
            f'to the nearest (--ambiguity-margin)')
    if max_distance is not None and (two[..., 0] > max_distance).any():
        far = np.unique(mask[two[..., 0] > max_distance])
        raise ValueError(
            f'grey values {describe_names([str(v) for v in far])} are farther than '
            f'{max_distance} from every level {GREY_LEVELS} (--max-stray-distance)')
    stray = two[..., 0] > 0
    label = nearest.astype(np.uint8)
    if strays == 'ignore':
        label[stray] = IGNORE_INDEX
    return label, int(stray.sum())


def stray_values(mask: np.ndarray) -> list[int]:
    """The grey values of ``mask`` that are not one of the levels."""
    return [int(v) for v in np.unique(mask) if v not in GREY_LEVELS]


def split_names(names: Sequence[str], num_train: int, seed: int = 0) -> tuple[list, list]:
    """Seeded shuffle of ``names`` into ``num_train`` train and the rest val names (each
    list sorted). The result depends only on the sorted names, ``num_train`` and ``seed``."""
    names = sorted(names)
    if not 1 <= num_train < len(names):
        raise ConversionError(f'--train must be between 1 and {len(names) - 1} for '
                              f'{len(names)} images, got {num_train}')
    order = np.random.default_rng(seed).permutation(len(names))
    train = sorted(names[i] for i in order[:num_train])
    val = sorted(names[i] for i in order[num_train:])
    return train, val


def convert_wbc(src: str, out: str, num_train: int = 60, seed: int = 0,
                strays: str = 'nearest', max_distance: int | None = None,
                overwrite: bool = False, ambiguity_margin: int = 16) -> dict:
    """Convert the WBC folder ``src`` into ``out``.

    Returns ``dict(train=[stems], val=[stems], changed={mask name: stray pixel count},
    values={mask name: [stray grey values]})``.
    """
    from mmengine.utils import track_iter_progress

    if strays not in STRAY_MODES:
        raise ConversionError(f'--strays must be one of {STRAY_MODES}, got {strays!r}')
    if max_distance is not None and max_distance < 0:
        raise ConversionError(f'--max-stray-distance must be >= 0, got {max_distance}')
    if ambiguity_margin < 0:
        raise ConversionError(f'--ambiguity-margin must be >= 0, got {ambiguity_margin}')
    require_source(src)
    train, val = split_names(pair_wbc(src), num_train, seed)
    changed: dict[str, int] = {}
    values: dict[str, list[int]] = {}
    with staged_output(out, overwrite) as tmp:
        for split, stems in (('train', train), ('val', val)):
            os.makedirs(osp.join(tmp, 'img_dir', split))
            os.makedirs(osp.join(tmp, 'ann_dir', split))
            with open(osp.join(tmp, f'{split}.txt'), 'w') as f:
                f.writelines(f'{s}\n' for s in stems)
            print(f'{split}: {len(stems)} images')
            for stem in track_iter_progress(list(stems)):
                img_path = osp.join(src, f'{stem}.bmp')
                mask_path = osp.join(src, f'{stem}.png')
                size = read_image_size(img_path)
                mask = read_grey_mask(mask_path)
                if mask.shape != size:
                    raise ConversionError(f'{mask_path!r} is {mask.shape[0]}x{mask.shape[1]}'
                                          f' but its image is {size[0]}x{size[1]}')
                try:
                    label, num_stray = map_grey_levels(mask, strays, max_distance,
                                                       ambiguity_margin)
                except ValueError as exc:
                    raise ConversionError(f'{mask_path!r}: {exc}') from exc
                if num_stray:
                    changed[f'{stem}.png'] = num_stray
                    values[f'{stem}.png'] = stray_values(mask)
                shutil.copyfile(img_path, osp.join(tmp, 'img_dir', split, f'{stem}.bmp'))
                write_mask(osp.join(tmp, 'ann_dir', split, f'{stem}.png'), label)
    target = 'the nearest level' if strays == 'nearest' else f'{IGNORE_INDEX} (ignored)'
    if changed:
        print(f'stray grey values mapped to {target}: {sum(changed.values())} pixels in '
              f'{len(changed)} mask(s)')
        for name, count in sorted(changed.items()):
            print(f'  {name}: {count} pixels (values '
                  f'{", ".join(str(v) for v in values[name])})')
    else:
        print('no stray grey values')
    print(f'wrote {out}: train {len(train)}, val {len(val)} (seed {seed})')
    return dict(train=train, val=val, changed=changed, values=values)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Convert White Blood Cell Dataset 2 for nlseg\'s WBCDataset: map grey '
                    'levels 0/128/255 to 0/1/2 and write a seeded train/val split.')
    parser.add_argument('src', help='folder with NNN.bmp images and NNN.png masks')
    parser.add_argument('--out', default='data/wbc', help='output folder')
    parser.add_argument('--train', type=int, default=60,
                        help='number of training images (the rest is val); default 60')
    parser.add_argument('--seed', type=int, default=0, help='seed of the split shuffle')
    parser.add_argument('--strays', choices=STRAY_MODES, default='nearest',
                        help='stray grey values go to the nearest level or to 255 (ignored)')
    parser.add_argument('--ambiguity-margin', type=int, default=16,
                        help='refuse a stray value whose distances to its two nearest '
                             'levels differ by less than this (default 16)')
    parser.add_argument('--max-stray-distance', type=int, default=None,
                        help='also refuse a stray value farther than this from every level '
                             '(default: no limit)')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an existing output folder')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    convert_wbc(args.src, args.out, num_train=args.train, seed=args.seed,
                strays=args.strays, max_distance=args.max_stray_distance,
                overwrite=args.overwrite, ambiguity_margin=args.ambiguity_margin)

