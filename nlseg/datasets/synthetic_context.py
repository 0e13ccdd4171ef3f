"""The synthetic long-range-context data set (see :mod:`.synthetic_context_generator`)."""
from __future__ import annotations

import os.path as osp

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .synthetic_context_generator import CLASSES, PALETTE


@DATASETS.register_module()
class SyntheticContextDataset(BaseSegDataset):
    """Discs whose class is given by a colour key on the opposite side of the image.

    Layout: ``img_dir/{train,val}/*.png`` and ``ann_dir/{train,val}/*.png`` under
    ``data_root``; make it with ``python tools/make_demo_data.py``.
    """
    METAINFO = dict(classes=CLASSES, palette=PALETTE)

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=False, **kwargs)

    def load_data_list(self) -> list:
        img_dir = self.data_prefix.get('img_path', '')
        if not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'SyntheticContextDataset: image folder {img_dir!r} does not exist '
                f'(data_root={self.data_root!r}). Make the demo data with '
                f'`python tools/make_demo_data.py` (or `make demo`).')
        return super().load_data_list()
