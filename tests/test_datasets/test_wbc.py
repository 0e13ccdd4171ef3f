"""WBCDataset on fixture data in mmseg's classic layout, alone and through the base config."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

import nlseg  # noqa: F401  (registers the data sets)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SPLITS = {'train': 3, 'val': 2}


@pytest.fixture(autouse=True)
def mmseg_scope():
    """Resolve transform names (LoadAnnotations...) in mmseg's registry, as configs do."""
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _save(path: str, arr: np.ndarray) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    Image.fromarray(arr).save(path)


@pytest.fixture
def wbc_root(tmp_path):
    """A converted WBC: img_dir/{train,val}/NNN.bmp, ann_dir/{train,val}/NNN.png (0/1/2)."""
    rng = np.random.default_rng(0)
    k = 1
    for split, count in SPLITS.items():
        for _ in range(count):
            _save(str(tmp_path / 'img_dir' / split / f'{k:03d}.bmp'),
                  rng.integers(0, 256, (30, 30, 3), dtype=np.uint8))
            label = np.zeros((30, 30), dtype=np.uint8)
            label[8:22, 8:22] = 1
            label[12:18, 12:18] = 2
            _save(str(tmp_path / 'ann_dir' / split / f'{k:03d}.png'), label)
            k += 1
    return str(tmp_path)


def test_metainfo():
    from nlseg.datasets import WBCDataset
    assert WBCDataset.METAINFO['classes'] == ('background', 'cytoplasm', 'nucleus')
    assert len(WBCDataset.METAINFO['palette']) == 3


def test_loads_bmp_images_and_png_labels(wbc_root):
    from mmseg.registry import DATASETS
    ds = DATASETS.build(dict(
        type='WBCDataset', data_root=wbc_root,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]))
    assert len(ds) == 3
    info = ds.get_data_info(2)
    assert info['img_path'] == osp.join(wbc_root, 'img_dir', 'train', '003.bmp')
    assert info['seg_map_path'] == osp.join(wbc_root, 'ann_dir', 'train', '003.png')
    sample = ds[0]
    assert sample['img'].shape == (30, 30, 3)
    assert sorted(np.unique(sample['gt_seg_map']).tolist()) == [0, 1, 2]


def test_ann_file_selects_images(wbc_root):
    from mmseg.registry import DATASETS
    with open(osp.join(wbc_root, 'val.txt'), 'w') as f:
        f.write('005\n')
    ds = DATASETS.build(dict(
        type='WBCDataset', data_root=wbc_root, ann_file='val.txt',
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val')))
    assert [d['img_path'] for d in ds] == [osp.join(wbc_root, 'img_dir', 'val', '005.bmp')]


def test_base_config_builds(wbc_root):
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/wbc.py'))
    for key, split in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
        ds_cfg = cfg[key].dataset
        ds_cfg.data_root = wbc_root
        ds = DATASETS.build(ds_cfg)
        assert len(ds) == SPLITS[split]
        packed = ds[0]
        assert set(packed['data_samples'].gt_sem_seg.data.unique().tolist()) <= {0, 1, 2, 255}
    assert tuple(packed['inputs'].shape[1:]) == (300, 300)  # test pipeline resizes
