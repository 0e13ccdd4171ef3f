"""CamVid, the 11-class version of SegNet (Brostow et al. 2009; Badrinarayanan et al. 2017)."""
from __future__ import annotations

from mmseg.datasets import BaseSegDataset
from mmseg.registry import DATASETS

__all__ = ['CamVidDataset']


@DATASETS.register_module()
class CamVidDataset(BaseSegDataset):
    """CamVid as distributed with SegNet: 367 train, 101 val and 233 test images of
    360 x 480, 11 classes; SegNet's label 11 (void) is ignored.

    Layout (SegNet's, with labels converted by ``tools/dataset_converters/camvid.py``,
    which maps void 11 to 255)::

        data_root/train/*.png   data_root/trainannot/*.png
        data_root/val/*.png     data_root/valannot/*.png
        data_root/test/*.png    data_root/testannot/*.png

    Images and labels share their basenames; ``data_prefix=dict(img_path='train',
    seg_map_path='trainannot')`` selects a split.
    """
    METAINFO = dict(
        classes=('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol',
                 'Fence', 'Car', 'Pedestrian', 'Bicyclist'),
        palette=[[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128],
                 [60, 40, 222], [128, 128, 0], [192, 128, 128], [64, 64, 128],
                 [64, 0, 128], [64, 64, 0], [0, 128, 192]])

    def __init__(self, img_suffix: str = '.png', seg_map_suffix: str = '.png',
                 reduce_zero_label: bool = False, **kwargs) -> None:
        super().__init__(img_suffix=img_suffix, seg_map_suffix=seg_map_suffix,
                         reduce_zero_label=reduce_zero_label, **kwargs)
