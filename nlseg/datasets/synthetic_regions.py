"""The synthetic regions data set (see :mod:`.synthetic_regions_generator`)."""
from __future__ import annotations

import os.path as osp

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

from .synthetic_regions_generator import CLASSES, PALETTE


@DATASETS.register_module()
class SyntheticRegionsDataset(BaseSegDataset):
    """Colour regions whose class (stripe orientation) is visible only in a noisy texture.

    Layout: ``img_dir/{train,val}/*.png`` and ``ann_dir/{train,val}/*.png`` under
    ``data_root``; make it with
    ``nlseg.datasets.synthetic_regions_generator.generate_synthetic_regions``.
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
                f'SyntheticRegionsDataset: image folder {img_dir!r} does not exist '
                f'(data_root={self.data_root!r}). Make the data with '
                f'`python -c "from nlseg.datasets.synthetic_regions_generator import '
                f'generate_synthetic_regions as g; g(\'data/synthetic_regions\')"`.')
        return super().load_data_list()
