"""White Blood Cell Dataset 2 (Zheng et al. 2018): 100 images of 300 x 300."""
from __future__ import annotations

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['WBCDataset']


@DATASETS.register_module()
class WBCDataset(BaseSegDataset):
    """White blood cells: background, cytoplasm and nucleus (labels 0, 1, 2).

    The source masks use grey levels 0, 128 and 255; ``tools/dataset_converters/wbc.py``
    maps them to 0, 1, 2 and writes mmseg's classic layout with a seeded train/val split::

        data_root/img_dir/{train,val}/NNN.bmp   data_root/ann_dir/{train,val}/NNN.png
    """
    METAINFO = dict(classes=('background', 'cytoplasm', 'nucleus'),
                    palette=[[0, 0, 0], [255, 190, 60], [120, 40, 160]])

    def __init__(self, img_suffix: str = '.bmp', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
