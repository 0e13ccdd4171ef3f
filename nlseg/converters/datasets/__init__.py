"""Data set converters: a published data set's folder -> the layout of an nlseg data set.

* :mod:`.camvid`: SegNet's CamVid -> :class:`nlseg.datasets.CamVidDataset`;
* :mod:`.wbc`: White Blood Cell Dataset 2 -> :class:`nlseg.datasets.WBCDataset`;
* :mod:`.source`: reading and checking the source folder (pairs, images, masks);
* :mod:`.output`: the output written atomically.

Their command lines are ``tools/dataset_converters/camvid.py`` and ``wbc.py``.
"""
from .camvid import convert_camvid
from .output import staged_output, write_mask
from .source import (describe_names, list_files, read_grey_mask, read_image_size,
                     require_source)
from .wbc import convert_wbc

__all__ = ['convert_camvid', 'convert_wbc', 'staged_output', 'write_mask', 'describe_names',
           'list_files', 'read_grey_mask', 'read_image_size', 'require_source']
