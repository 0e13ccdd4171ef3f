import os
import os.path as osp

import cv2
import numpy as np
import pytest

from nlseg.datasets.synthetic_context_generator import (CLASSES, DISC_GREY, DISC_RADIUS,
                                                        KEY_COLOURS, KEY_WIDTH, default_geometry,
                                                        generate_synthetic_context,
                                                        labels_from_image, render_sample)
from tests.helpers import folder_digest


def test_same_seed_same_bytes(tmp_path):
    a = generate_synthetic_context(str(tmp_path / 'a'), num_train=6, num_val=3, seed=3)
    b = generate_synthetic_context(str(tmp_path / 'b'), num_train=6, num_val=3, seed=3)
    c = generate_synthetic_context(str(tmp_path / 'c'), num_train=6, num_val=3, seed=4)
    assert folder_digest(a) == folder_digest(b)
    assert folder_digest(a) != folder_digest(c)


def test_layout_and_labels_consistent_with_images(tmp_path):
    root = generate_synthetic_context(str(tmp_path / 'd'), num_train=10, num_val=4)
    for split, count in (('train', 10), ('val', 4)):
        names = sorted(os.listdir(osp.join(root, 'img_dir', split)))
        assert names == sorted(os.listdir(osp.join(root, 'ann_dir', split)))
        assert len(names) == count
        for name in names:
            img = cv2.imread(osp.join(root, 'img_dir', split, name))[:, :, ::-1]
            label = cv2.imread(osp.join(root, 'ann_dir', split, name), cv2.IMREAD_UNCHANGED)
            assert img.shape == (96, 96, 3) and label.shape == (96, 96)
            assert label.dtype == np.uint8
            assert set(np.unique(label)) <= set(range(len(CLASSES)))
            np.testing.assert_array_equal(label, labels_from_image(img))
    # no temporary folder is left behind
    assert [p for p in os.listdir(tmp_path) if p.startswith('.')] == []


def test_discs_look_identical_whatever_their_class():
    """The class of a disc is decided by the far-away key only: the disc pixels of every
    class are the same grey, and discs sit in the half away from the key."""
    rng = np.random.Generator(np.random.PCG64(0))
    seen = set()
    for _ in range(30):
        img, label = render_sample(rng)
        classes = set(np.unique(label)) - {0}
        assert len(classes) == 1
        seen |= classes
        discs = label > 0
        assert (img[discs] == DISC_GREY).all()
        key_left = any((img[:, :KEY_WIDTH] == colour).all() for colour in KEY_COLOURS)
        cols = np.nonzero(discs.any(axis=0))[0]
        if key_left:
            assert cols.min() >= 48
        else:
            assert cols.max() < 48
    assert seen == {1, 2, 3}


def test_dataset_class_loads_and_reports_missing_root(tmp_path):
    import nlseg  # noqa: F401
    from mmseg.registry import DATASETS
    root = generate_synthetic_context(str(tmp_path / 'e'), num_train=3, num_val=2)
    ds = DATASETS.build(dict(type='SyntheticContextDataset', data_root=root,
                             data_prefix=dict(img_path='img_dir/train',
                                              seg_map_path='ann_dir/train'),
                             pipeline=[]))
    assert len(ds) == 3
    assert ds.metainfo['classes'] == CLASSES
    missing = str(tmp_path / 'nowhere')
    with pytest.raises(FileNotFoundError, match='make_demo_data'):
        DATASETS.build(dict(type='SyntheticContextDataset', data_root=missing,
                            data_prefix=dict(img_path='img_dir/train',
                                             seg_map_path='ann_dir/train')))


def test_bad_generator_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_train'):
        generate_synthetic_context(str(tmp_path / 'f'), num_train=0)
    with pytest.raises(ValueError, match='size'):
        render_sample(np.random.Generator(np.random.PCG64(0)), size=8)


@pytest.mark.parametrize('size', [64, 96])
def test_geometry_scales_with_the_image(size):
    """Key width size // 8 and disc radii (size // 12, size // 8): the size-96 geometry
    (KEY_WIDTH, DISC_RADIUS) at every size; labels stay recoverable from the image."""
    width, (r_lo, r_hi) = default_geometry(size)
    assert (width, r_lo, r_hi) == (size // 8, size // 12, size // 8)
    if size == 96:
        assert (width, (r_lo, r_hi)) == (KEY_WIDTH, DISC_RADIUS)
    rng = np.random.Generator(np.random.PCG64(1))
    for _ in range(20):
        img, label = render_sample(rng, size=size)
        assert img.shape == (size, size, 3)
        np.testing.assert_array_equal(label, labels_from_image(img))
        key_left = any((img[:, :width] == c).all() for c in KEY_COLOURS)
        key_right = any((img[:, -width:] == c).all() for c in KEY_COLOURS)
        assert key_left != key_right
        cols = np.nonzero((label > 0).any(axis=0))[0]
        assert (cols.min() >= size // 2) if key_left else (cols.max() < size // 2)
