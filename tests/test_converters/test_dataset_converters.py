"""The CamVid and WBC converters (nlseg/converters/datasets/) on synthetic source folders,
good and bad. Their command lines are tested in tests/test_tools/test_dataset_converters.py."""
from __future__ import annotations

import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from nlseg.converters import ConversionError
from nlseg.converters.datasets import camvid as camvid_conv
from nlseg.converters.datasets import wbc as wbc_conv
from tests.test_converters.dataset_sources import (H, W, make_camvid, make_wbc, random_image,
                                                   save_png)


def assert_no_output(out: str) -> None:
    """Neither the output nor a temporary folder beside it is left."""
    assert not osp.exists(out)
    parent = osp.dirname(out)
    leftovers = [n for n in os.listdir(parent) if n.startswith(f'.{osp.basename(out)}-')]
    assert leftovers == []


# ---------------------------------------------------------------------------- CamVid
def test_camvid_map_void():
    label = np.array([[0, 10, 11, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(camvid_conv.map_void(label), [[0, 10, 255, 255]])
    with pytest.raises(ConversionError, match='12'):
        camvid_conv.map_void(np.array([[0, 12]], dtype=np.uint8))


def test_camvid_converts(tmp_path):
    src, out = str(tmp_path / 'CamVid'), str(tmp_path / 'data' / 'camvid')
    labels = make_camvid(src)
    counts = camvid_conv.convert_camvid(src, out)
    assert counts == {'train': 2, 'val': 1, 'test': 1}
    for key, label in labels.items():
        split, name = key.split('/')
        written = np.asarray(Image.open(osp.join(out, f'{split}annot', name)))
        assert written.shape == (H, W)
        np.testing.assert_array_equal(written, np.where(label == 11, 255, label))
        with open(osp.join(src, split, name), 'rb') as a, \
                open(osp.join(out, split, name), 'rb') as b:
            assert a.read() == b.read()
    assert sorted(os.listdir(out)) == sorted(
        ['train', 'trainannot', 'val', 'valannot', 'test', 'testannot'])
    assert [n for n in os.listdir(tmp_path / 'data') if n != 'camvid'] == []


def test_camvid_refuses_existing_output_unless_overwrite(tmp_path):
    src, out = str(tmp_path / 'CamVid'), str(tmp_path / 'camvid')
    make_camvid(src)
    os.makedirs(out)
    open(osp.join(out, 'keep.txt'), 'w').close()
    with pytest.raises(ConversionError, match='--overwrite'):
        camvid_conv.convert_camvid(src, out)
    assert os.listdir(out) == ['keep.txt']
    camvid_conv.convert_camvid(src, out, overwrite=True)
    assert not osp.exists(osp.join(out, 'keep.txt'))
    assert len(os.listdir(osp.join(out, 'train'))) == 2
    assert [n for n in os.listdir(tmp_path) if n.startswith('.')] == []


def _remove(path):
    os.remove(path)


def _garbage(path):
    with open(path, 'wb') as f:
        f.write(b'not a png')


def _bad_value(path):
    save_png(path, np.full((H, W), 17, dtype=np.uint8))


def _wrong_size(path):
    save_png(path, np.zeros((H + 1, W), dtype=np.uint8))


@pytest.mark.parametrize('damage, match', [
    (lambda s: _remove(osp.join(s, 'trainannot', 'b.png')),
     r'without a label in trainannot/: b\.png'),
    (lambda s: _remove(osp.join(s, 'val', 'c.png')), r'without an image in val/: c\.png'),
    (lambda s: save_png(osp.join(s, 'test', 'extra.png'), random_image(0)), r'extra\.png'),
    (lambda s: [_remove(osp.join(s, 'testannot', n)) for n in os.listdir(
        osp.join(s, 'testannot'))] and os.rmdir(osp.join(s, 'testannot')),
     'testannot.* is missing'),
    (lambda s: [_remove(osp.join(s, d, 'c.png')) for d in ('val', 'valannot')],
     "split 'val' is empty"),
    (lambda s: _garbage(osp.join(s, 'train', 'a.png')), 'cannot read image'),
    (lambda s: _garbage(osp.join(s, 'trainannot', 'a.png')), 'cannot read mask'),
    (lambda s: _bad_value(osp.join(s, 'valannot', 'c.png')), 'label values 17'),
    (lambda s: _wrong_size(osp.join(s, 'testannot', 'd.png')), 'but its image is 12x16'),
], ids=['missing-label', 'missing-image', 'extra-image', 'missing-folder', 'empty-split',
        'unreadable-image', 'unreadable-label', 'bad-label-value', 'size-mismatch'])
def test_camvid_bad_source(tmp_path, damage, match):
    src, out = str(tmp_path / 'CamVid'), str(tmp_path / 'camvid')
    make_camvid(src)
    damage(src)
    with pytest.raises(ConversionError, match=match):
        camvid_conv.convert_camvid(src, out)
    assert_no_output(out)


def test_camvid_missing_or_empty_source(tmp_path):
    out = str(tmp_path / 'camvid')
    with pytest.raises(ConversionError, match='does not exist'):
        camvid_conv.convert_camvid(str(tmp_path / 'nowhere'), out)
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(ConversionError, match='is empty'):
        camvid_conv.convert_camvid(str(tmp_path / 'empty'), out)
    assert_no_output(out)


def test_camvid_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    src, out = str(tmp_path / 'CamVid'), str(tmp_path / 'camvid')
    make_camvid(src)
    calls = []

    def interrupt(*args):
        calls.append(args)
        if len(calls) == 3:  # in the middle of the train split
            raise KeyboardInterrupt
        return original(*args)

    original = camvid_conv.write_mask
    monkeypatch.setattr(camvid_conv, 'write_mask', interrupt)
    with pytest.raises(KeyboardInterrupt):
        camvid_conv.convert_camvid(src, out)
    assert len(calls) == 3
    assert_no_output(out)


# ---------------------------------------------------------------------------- WBC
def test_wbc_map_grey_levels():
    mask = np.array([[0, 128, 255, 3, 120, 250]], dtype=np.uint8)
    label, stray = wbc_conv.map_grey_levels(mask)
    np.testing.assert_array_equal(label, [[0, 1, 2, 0, 1, 2]])
    assert stray == 3
    label, stray = wbc_conv.map_grey_levels(mask, strays='ignore')
    np.testing.assert_array_equal(label, [[0, 1, 2, 255, 255, 255]])
    assert stray == 3
    # the published masks' strays (034.png: 2, 7, 25, 42, 44, 45; 076.png: 24, 37, 50): far
    # from 0 (up to 50 grey levels) but far nearer it than 128, so background
    real = np.array([[2, 7, 25, 42, 44, 45, 24, 37, 50, 3, 9]], dtype=np.uint8)
    label, stray = wbc_conv.map_grey_levels(real)
    assert stray == 11 and not label.any()
    # truly ambiguous values (near the midpoints 64 and 191.5) are refused, named
    with pytest.raises(ValueError, match='grey values 64, 190 are ambiguous'):
        wbc_conv.map_grey_levels(np.array([[0, 64, 190]], dtype=np.uint8))
    wbc_conv.map_grey_levels(np.array([[56, 72, 183, 200]], dtype=np.uint8))  # margins 16+
    with pytest.raises(ValueError, match='grey values 57 are ambiguous'):
        wbc_conv.map_grey_levels(np.array([[57]], dtype=np.uint8))
    label, _ = wbc_conv.map_grey_levels(np.array([[64]], dtype=np.uint8), ambiguity_margin=0)
    assert label.tolist() == [[0]]  # margin 0: ties go to the lower level
    # an explicit distance limit still applies
    with pytest.raises(ValueError, match='grey values 37, 42, 44, 45, 50 are farther than 32'):
        wbc_conv.map_grey_levels(real, max_distance=32)
    with pytest.raises(ValueError, match='strays'):
        wbc_conv.map_grey_levels(mask, strays='drop')


def test_wbc_split_is_seeded_and_complete():
    names = [f'{i:03d}' for i in range(1, 101)]
    train, val = wbc_conv.split_names(names, 60, seed=0)
    assert (len(train), len(val)) == (60, 40)
    assert sorted(train + val) == names
    assert wbc_conv.split_names(list(reversed(names)), 60, seed=0) == (train, val)
    assert wbc_conv.split_names(names, 60, seed=1)[0] != train
    for bad in (0, 100):
        with pytest.raises(ConversionError, match='--train must be between 1 and 99'):
            wbc_conv.split_names(names, bad)


def test_wbc_converts(tmp_path, capsys):
    src, out = str(tmp_path / 'wbc_src'), str(tmp_path / 'data' / 'wbc')
    masks = make_wbc(src)
    result = wbc_conv.convert_wbc(src, out, num_train=3, seed=0)
    assert len(result['train']) == 3 and len(result['val']) == 2
    assert sorted(result['train'] + result['val']) == sorted(masks)
    assert result['changed'] == {'002.png': 3}
    printed = capsys.readouterr().out
    assert '3 pixels in 1 mask(s)' in printed
    assert '002.png: 3 pixels (values 3, 120, 250)' in printed
    assert result['values'] == {'002.png': [3, 120, 250]}
    for split in ('train', 'val'):
        with open(osp.join(out, f'{split}.txt')) as f:
            assert f.read().split() == result[split]
        for stem in result[split]:
            label = np.asarray(Image.open(osp.join(out, 'ann_dir', split, f'{stem}.png')))
            expected = np.select([masks[stem] > 191, masks[stem] > 63], [2, 1], 0)
            np.testing.assert_array_equal(label, expected)
            assert osp.isfile(osp.join(out, 'img_dir', split, f'{stem}.bmp'))
    assert os.listdir(tmp_path / 'data') == ['wbc']


def test_wbc_strays_ignore(tmp_path):
    src, out = str(tmp_path / 'wbc_src'), str(tmp_path / 'wbc')
    make_wbc(src)
    result = wbc_conv.convert_wbc(src, out, num_train=3, strays='ignore')
    split = 'train' if '002' in result['train'] else 'val'
    label = np.asarray(Image.open(osp.join(out, 'ann_dir', split, '002.png')))
    np.testing.assert_array_equal(label[0, :4], [255, 255, 255, 0])


@pytest.mark.parametrize('damage, kwargs, match', [
    (lambda s: _remove(osp.join(s, '003.png')), {}, r'without a \.png mask: 003\.bmp'),
    (lambda s: _remove(osp.join(s, '004.bmp')), {}, r'without a \.bmp image: 004\.png'),
    (lambda s: [_remove(osp.join(s, n)) for n in os.listdir(s)] and open(
        osp.join(s, 'notes.txt'), 'w').close(), {}, r'no \.bmp images or \.png masks'),
    (lambda s: _garbage(osp.join(s, '001.bmp')), {}, 'cannot read image'),
    (lambda s: _garbage(osp.join(s, '005.png')), {}, 'cannot read mask'),
    (lambda s: save_png(osp.join(s, '005.png'), np.full((H, W), 64, np.uint8)), {},
     r'005\.png.*grey values 64 are ambiguous'),
    (lambda s: save_png(osp.join(s, '005.png'), np.zeros((H, W + 2), np.uint8)), {},
     'but its image is 12x16'),
    (lambda s: save_png(osp.join(s, '005.png'), np.stack(
        [np.zeros((H, W), np.uint8), np.full((H, W), 128, np.uint8),
         np.zeros((H, W), np.uint8)], axis=2)), {}, 'colour image'),
    (lambda s: None, dict(num_train=5), '--train must be between 1 and 4'),
    (lambda s: None, dict(strays='drop'), '--strays must be one of'),
], ids=['missing-mask', 'missing-image', 'no-pairs', 'unreadable-image', 'unreadable-mask',
        'far-value', 'size-mismatch', 'colour-mask', 'train-too-large', 'bad-strays'])
def test_wbc_bad_source(tmp_path, damage, kwargs, match):
    src, out = str(tmp_path / 'wbc_src'), str(tmp_path / 'wbc')
    make_wbc(src)
    damage(src)
    kwargs = dict(dict(num_train=3), **kwargs)
    with pytest.raises(ConversionError, match=match):
        wbc_conv.convert_wbc(src, out, **kwargs)
    assert_no_output(out)


def test_wbc_missing_or_empty_source(tmp_path):
    out = str(tmp_path / 'wbc')
    with pytest.raises(ConversionError, match='does not exist'):
        wbc_conv.convert_wbc(str(tmp_path / 'nowhere'), out)
    os.makedirs(tmp_path / 'empty')
    with pytest.raises(ConversionError, match='is empty'):
        wbc_conv.convert_wbc(str(tmp_path / 'empty'), out)
    assert_no_output(out)
