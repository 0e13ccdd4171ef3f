"""The synthetic regions data set (the NLTV demo task) and its two demo configs."""
import copy
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch

from nlseg.datasets.synthetic_regions_generator import (CLASSES, MIN_COLOUR_DISTANCE,
                                                        MIN_REGION_AREA,
                                                        generate_synthetic_regions,
                                                        render_regions, render_sample, stripes)
from tests.helpers import ROOT, folder_digest

REGIONS_CONFIGS = sorted(
    osp.join(ROOT, 'configs', 'demo', name)
    for name in os.listdir(osp.join(ROOT, 'configs', 'demo'))
    if name.endswith('_synthetic-regions-64x64.py'))


def test_same_seed_same_bytes(tmp_path):
    a = generate_synthetic_regions(str(tmp_path / 'a'), num_train=5, num_val=3, seed=3)
    b = generate_synthetic_regions(str(tmp_path / 'b'), num_train=5, num_val=3, seed=3)
    c = generate_synthetic_regions(str(tmp_path / 'c'), num_train=5, num_val=3, seed=4)
    assert folder_digest(a) == folder_digest(b)
    assert folder_digest(a) != folder_digest(c)


def test_layout_written_atomically(tmp_path):
    root = generate_synthetic_regions(str(tmp_path / 'd'), num_train=6, num_val=4)
    for split, count in (('train', 6), ('val', 4)):
        names = sorted(os.listdir(osp.join(root, 'img_dir', split)))
        assert names == sorted(os.listdir(osp.join(root, 'ann_dir', split)))
        assert len(names) == count
        for name in names:
            img = cv2.imread(osp.join(root, 'img_dir', split, name))
            label = cv2.imread(osp.join(root, 'ann_dir', split, name), cv2.IMREAD_UNCHANGED)
            assert img.shape == (64, 64, 3) and label.shape == (64, 64)
            assert label.dtype == np.uint8
            assert set(np.unique(label)) <= set(range(len(CLASSES)))
    assert [p for p in os.listdir(tmp_path) if p.startswith('.')] == []
    # an existing folder is replaced, not merged
    generate_synthetic_regions(root, num_train=2, num_val=1)
    assert len(os.listdir(osp.join(root, 'img_dir', 'train'))) == 2


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_labels_follow_the_image_recipe(seed):
    """Without noise, every region is its flat colour plus stripes whose orientation is the
    label: horizontal stripes (label 0) are constant along x, vertical ones (1) along y, and
    the regions' colours are pairwise MIN_COLOUR_DISTANCE apart whatever their classes."""
    rng = np.random.Generator(np.random.PCG64(seed))
    for _ in range(10):
        replay = copy.deepcopy(rng)
        regions, classes, colours = render_regions(replay)
        img, label = render_sample(rng, noise_std=0.0)
        np.testing.assert_array_equal(label, classes[regions])
        assert np.bincount(regions.ravel()).min() >= MIN_REGION_AREA
        img = img.astype(np.int64)
        for r, cls in enumerate(classes):
            mask = regions == r
            # one flat colour per region: the three channels differ by the colour only
            diff = img[mask] - img[mask][:, :1]
            np.testing.assert_array_equal(diff, diff[:1].repeat(len(diff), 0))
            if cls == 0:
                same = mask[:, 1:] & mask[:, :-1]
                along = img[:, 1:, 0][same] == img[:, :-1, 0][same]
                across = img[1:, :, 0][mask[1:] & mask[:-1]] == img[:-1, :, 0][mask[1:] & mask[:-1]]
            else:
                same = mask[1:] & mask[:-1]
                along = img[1:, :, 0][same] == img[:-1, :, 0][same]
                across = (img[:, 1:, 0][mask[:, 1:] & mask[:, :-1]]
                          == img[:, :-1, 0][mask[:, 1:] & mask[:, :-1]])
            assert along.all()
            assert not across.all()  # the stripes are there
        dists = np.linalg.norm(colours[:, None] - colours[None], axis=-1)
        assert dists[~np.eye(len(colours), dtype=bool)].min() >= MIN_COLOUR_DISTANCE


def test_noise_buries_the_texture():
    """With the default noise a single pixel's neighbour difference does not tell the
    orientation: the per-pixel evidence is weak, only a neighbourhood reads it."""
    rng = np.random.Generator(np.random.PCG64(0))
    img, label = render_sample(rng)
    g = img[..., 0].astype(np.float64)
    dx = np.abs(g[:, 1:] - g[:, :-1])[:-1, :]
    dy = np.abs(g[1:, :] - g[:-1, :])[:, :-1]
    guess = (dx > dy).astype(np.uint8)  # 1: changes along x, vertical stripes
    acc = (guess == label[:-1, :-1]).mean()
    assert 0.5 < acc < 0.8


def test_stripes_pattern():
    h = stripes(8, 0, 0, period=4)
    np.testing.assert_array_equal(h[:, 0], [1, 1, -1, -1, 1, 1, -1, -1])
    assert (h == h[:, :1]).all()
    np.testing.assert_array_equal(stripes(8, 1, 1, period=4), stripes(8, 0, 1, period=4).T)


@pytest.mark.parametrize('kwargs, name', [
    (dict(num_train=0), 'num_train'),
    (dict(num_val=-1), 'num_val'),
    (dict(size=4), 'size'),
    (dict(seed=-1), 'seed'),
    (dict(num_train=2.5), 'num_train'),
])
def test_bad_generator_args_raise(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        generate_synthetic_regions(str(tmp_path / 'x'), **kwargs)
    assert not osp.exists(tmp_path / 'x')


@pytest.mark.parametrize('kwargs, name', [
    (dict(noise_std=-1.0), 'noise_std'),
    (dict(amplitude=float('nan')), 'amplitude'),
    (dict(period=1), 'period'),
])
def test_bad_render_args_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        render_sample(np.random.Generator(np.random.PCG64(0)), **kwargs)


def test_bad_layout_args_raise():
    rng = np.random.Generator(np.random.PCG64(0))
    with pytest.raises(ValueError, match=r'num_regions\[1\]'):
        render_regions(rng, num_regions=(4, 3))
    with pytest.raises(ValueError, match='num_classes'):
        render_regions(rng, num_classes=0)


def test_configs_are_the_two_demo_slugs():
    assert [osp.basename(p).split('_')[0] for p in REGIONS_CONFIGS] == ['fcn-regions',
                                                                       'nltv-regions']


def test_dataset_loads_with_the_config_pipelines(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmseg.registry import DATASETS

    import nlseg  # noqa: F401
    root = generate_synthetic_regions(str(tmp_path / 'data'), num_train=3, num_val=2)
    cfg = Config.fromfile(REGIONS_CONFIGS[0])
    init_default_scope('mmseg')
    for loader, count, side in ((cfg.train_dataloader, 3, 32), (cfg.val_dataloader, 2, 64)):
        ds_cfg = copy.deepcopy(loader.dataset)
        ds_cfg.data_root = root
        ds = DATASETS.build(ds_cfg)
        assert type(ds).__name__ == 'SyntheticRegionsDataset'
        assert ds.metainfo['classes'] == CLASSES
        assert len(ds) == count
        item = ds[0]
        assert tuple(item['inputs'].shape) == (3, side, side)
        seg = item['data_samples'].gt_sem_seg.data
        assert tuple(seg.shape) == (1, side, side)
        assert set(seg.unique().tolist()) <= {0, 1}
    missing = copy.deepcopy(cfg.val_dataloader.dataset)
    missing.data_root = str(tmp_path / 'nothing')
    with pytest.raises(FileNotFoundError, match='SyntheticRegionsDataset'):
        DATASETS.build(missing)


def test_evaluator_reports_miou_isolated_regions_and_re():
    from mmengine.config import Config
    cfg = Config.fromfile(REGIONS_CONFIGS[0])
    types = [m['type'] for m in cfg.val_evaluator]
    assert types == ['ClassIoUMetric', 'IsolatedRegionMetric', 'REScoreMetric']


@pytest.mark.parametrize('path', REGIONS_CONFIGS, ids=lambda p: osp.basename(p).split('_')[0])
def test_regions_config_builds_and_trains_one_step(path):
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import nlseg  # noqa: F401
    from tests.helpers import random_batch
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['nlseg'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.pretrained is None
    assert cfg.randomness == dict(seed=0)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    before = [p.detach().clone() for p in model.parameters()]
    log_vars = model.train_step(random_batch(num_images=2, size=32, num_classes=2), optim)
    assert torch.isfinite(log_vars['loss'])
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), mode='tensor')
    assert out.shape == (1, 2, 64, 64)  # full resolution: isolated regions at pixel level


def test_nltv_config_is_the_baseline_with_the_image_graph_head():
    from mmengine.config import Config
    base, nltv = (Config.fromfile(p) for p in REGIONS_CONFIGS)
    head = nltv.model.decode_head
    assert head.type == 'NLTVHead' and head.graph_source == 'image'
    assert head.base_head.to_dict() == base.model.decode_head.to_dict()
    assert nltv.model.backbone.type == 'WithImageLevel'
    assert nltv.model.backbone.backbone.to_dict() == base.model.backbone.to_dict()
    # the head un-normalises with the data preprocessor's own mean / std
    assert list(head.image_mean) == list(base.model.data_preprocessor.mean)
    assert list(head.image_std) == list(base.model.data_preprocessor.std)
    for key in ('train_dataloader', 'val_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg'):
        assert nltv[key] == base[key]
