"""CamVidDataset on fixture data in SegNet's layout, alone and through the base config."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

import nlseg  # noqa: F401  (registers the data sets)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SPLITS = {'train': 3, 'val': 2, 'test': 1}


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
def camvid_root(tmp_path):
    """A converted CamVid: labels 0..10 and 255, 36 x 48 images."""
    rng = np.random.default_rng(0)
    for split, count in SPLITS.items():
        for i in range(count):
            name = f'seq_{i:05d}.png'
            _save(str(tmp_path / split / name),
                  rng.integers(0, 256, (36, 48, 3), dtype=np.uint8))
            label = rng.integers(0, 11, (36, 48), dtype=np.uint8)
            label[:4] = 255
            _save(str(tmp_path / f'{split}annot' / name), label)
    return str(tmp_path)


def test_metainfo():
    from nlseg.datasets import CamVidDataset
    meta = CamVidDataset.METAINFO
    assert meta['classes'] == ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree',
                               'SignSymbol', 'Fence', 'Car', 'Pedestrian', 'Bicyclist')
    assert meta['palette'][0] == [128, 128, 128] and meta['palette'][4] == [60, 40, 222]
    assert meta['palette'][10] == [0, 128, 192]
    assert len(meta['palette']) == 11


@pytest.mark.parametrize('split', list(SPLITS))
def test_loads_split(camvid_root, split):
    from mmseg.registry import DATASETS
    ds = DATASETS.build(dict(
        type='CamVidDataset', data_root=camvid_root,
        data_prefix=dict(img_path=split, seg_map_path=f'{split}annot'),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations')]))
    assert len(ds) == SPLITS[split]
    info = ds.get_data_info(0)
    assert info['img_path'] == osp.join(camvid_root, split, 'seq_00000.png')
    assert info['seg_map_path'] == osp.join(camvid_root, f'{split}annot', 'seq_00000.png')
    assert info['reduce_zero_label'] is False
    sample = ds[0]
    assert sample['img'].shape == (36, 48, 3)
    seg = sample['gt_seg_map']
    assert seg.shape == (36, 48)
    assert (seg[:4] == 255).all() and seg[4:].max() <= 10


def test_base_config_builds_each_split(camvid_root):
    from mmengine.config import Config
    from mmseg.registry import DATASETS
    cfg = Config.fromfile(osp.join(ROOT, 'configs/_base_/datasets/camvid.py'))
    for key, split in (('train_dataloader', 'train'), ('val_dataloader', 'val'),
                       ('test_dataloader', 'test')):
        ds_cfg = cfg[key].dataset
        ds_cfg.data_root = camvid_root
        ds = DATASETS.build(ds_cfg)
        assert len(ds) == SPLITS[split]
        packed = ds[0]
        assert packed['inputs'].shape[0] == 3
        seg = packed['data_samples'].gt_sem_seg.data
        values = set(seg.unique().tolist())
        assert values <= set(range(11)) | {255}
    assert tuple(packed['inputs'].shape[1:]) == (360, 480)  # test pipeline resizes
