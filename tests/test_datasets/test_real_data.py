"""The published data sets end to end (marked ``real_data``: $NLSEG_REAL_DATA, docs/datasets.md):
the documented converter commands take them as published, with their defaults, and one config
per data set trains a few iterations on the real images and evaluates."""
import glob
import json
import os
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.helpers import real_data_dir

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONVERTERS = osp.join(ROOT, 'tools', 'dataset_converters')

pytestmark = pytest.mark.real_data


def run(args, timeout=900):
    env = dict(os.environ, OMP_NUM_THREADS='2')
    out = subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout, env=env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope='module')
def converted(tmp_path_factory):
    """Both published sets converted with the documented commands and their defaults."""
    root = tmp_path_factory.mktemp('real')
    wbc_src, camvid_src = real_data_dir('wbc-dataset2'), real_data_dir('camvid-segnet')
    wbc_log = run([osp.join(CONVERTERS, 'wbc.py'), wbc_src, '--out', str(root / 'wbc'),
                   '--train', '60', '--seed', '0'])
    camvid_log = run([osp.join(CONVERTERS, 'camvid.py'), camvid_src, '--out',
                      str(root / 'camvid')])
    return dict(root=root, wbc_log=wbc_log, camvid_log=camvid_log)


def labels_of(folder):
    values = set()
    for path in sorted(glob.glob(osp.join(folder, '*.png'))):
        values |= set(np.unique(np.asarray(Image.open(path))).tolist())
    return values


def test_wbc_converts_as_published(converted):
    out = converted['root'] / 'wbc'
    train = (out / 'train.txt').read_text().split()
    val = (out / 'val.txt').read_text().split()
    assert (len(train), len(val)) == (60, 40) and not set(train) & set(val)
    assert len(os.listdir(out / 'img_dir' / 'train')) == 60
    assert len(os.listdir(out / 'ann_dir' / 'val')) == 40
    assert labels_of(out / 'ann_dir' / 'train') | labels_of(out / 'ann_dir' / 'val') == \
        {0, 1, 2}
    # the strays of the published masks, reported per mask with their values
    log = converted['wbc_log']
    assert '304 pixels in 5 mask(s)' in log
    assert '034.png: 97 pixels (values 2, 7, 25, 42, 44, 45)' in log
    assert '076.png: 3 pixels (values 24, 37, 50)' in log
    from nlseg.datasets import WBCDataset
    data = WBCDataset(data_root=str(out), data_prefix=dict(img_path='img_dir/val',
                                                           seg_map_path='ann_dir/val'),
                      pipeline=[])
    assert len(data) == 40 and data.metainfo['classes'][0] == 'background'


def test_camvid_converts_as_published(converted):
    out = converted['root'] / 'camvid'
    counts = {split: len(os.listdir(out / split)) for split in ('train', 'val', 'test')}
    assert counts == dict(train=367, val=101, test=233)
    assert 'train 367, val 101, test 233' in converted['camvid_log']
    labels = labels_of(out / 'testannot')
    assert labels <= set(range(11)) | {255} and len(labels - {255}) == 11
    from nlseg.datasets import CamVidDataset
    data = CamVidDataset(data_root=str(out), data_prefix=dict(img_path='test',
                                                              seg_map_path='testannot'),
                         pipeline=[])
    assert len(data) == 233 and len(data.metainfo['classes']) == 11


@pytest.mark.slow
@pytest.mark.parametrize('config, data', [
    ('configs/nltv/unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py', 'wbc'),
    ('configs/nltv/ltv-fcn_unet-s5-d16_1xb4-20k_camvid-360x480.py', 'camvid'),
])
def test_a_config_trains_and_evaluates_on_real_images(converted, tmp_path, config, data):
    """2 training iterations (batch 2) on the real images, then validation on 4 of them."""
    root = str(converted['root'] / data)
    options = [f'{loader}.dataset.data_root={root}'
               for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    options += ['train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
                'train_dataloader.persistent_workers=False', 'val_dataloader.num_workers=0',
                'val_dataloader.persistent_workers=False', 'val_dataloader.dataset.indices=4',
                'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
                'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2',
                'randomness.seed=0']
    if osp.basename(config).startswith('ltv'):  # 20 test-time iterations: seconds, not 1500
        options.append('model.decode_head.nltv.test_iters=20')
    run(['tools/train.py', config, '--work-dir', str(tmp_path), '--cfg-options'] + options)
    assert osp.isfile(tmp_path / 'iter_2.pth')
    logs = glob.glob(str(tmp_path / '*' / '*.log'))
    text = open(logs[0]).read()
    miou = re.search(r'mIoU: ([0-9.]+)', text)
    assert miou and 0.0 <= float(miou.group(1)) <= 100.0


@pytest.mark.slow
def test_real_data_tables_run_resume_and_report(converted, tmp_path):
    """tools/analysis/real_data_table.py on the real images, shortened (3 iterations, 3 test
    images): a CamVid row and its mmseg anchor, the WBC NLTV fine-tune with its stage 1, and
    the paper-scale configs' first iterations (R-50-D8, 360 x 480, random init); a rerun finds
    every run done."""
    tool = 'tools/analysis/real_data_table.py'
    camvid = ['camvid', '--data-root', str(converted['root'] / 'camvid'), '--seeds', '0',
              '--iters', '3', '--test-images', '3', '--rows', 'nl', 'mmseg-nl',
              '--work-dir', str(tmp_path / 'camvid')]
    out = run([tool, *camvid])
    assert '[2/2] mmseg-nl/seed0' in out
    summary = (tmp_path / 'camvid' / 'summary.md').read_text()
    assert '| NL | nlseg | 0 |' in summary and '| NLHead | mmseg | 0 |' in summary
    assert 'Sky' in summary and (tmp_path / 'camvid' / 'miou.png').exists()
    assert '2 runs: 2 done before, 0 to run' in run([tool, *camvid])
    wbc = ['wbc', '--data-root', str(converted['root'] / 'wbc'), '--seeds', '0', '--iters',
           '3', '--test-images', '2', '--rows', 'nltv-ft', '--work-dir', str(tmp_path / 'wbc')]
    out = run([tool, *wbc])
    assert '[1/2] unet/seed0' in out and '[2/2] nltv-ft/seed0' in out
    assert 'Loads checkpoint by local backend from path: ' + str(tmp_path / 'wbc' / 'unet')  \
        in (tmp_path / 'wbc' / 'nltv-ft' / 'seed0' / 'run.log').read_text()
    paper = ['camvid', '--scale', 'paper', '--no-pretrained', '--data-root',
             str(converted['root'] / 'camvid'), '--seeds', '0', '--iters', '2',
             '--test-images', '1', '--rows', 'fcn', '--work-dir', str(tmp_path / 'paper')]
    out = run([tool, *paper])
    assert '[1/1] fcn/seed0' in out
    result = json.loads((tmp_path / 'paper' / 'fcn' / 'seed0' / 'result.json').read_text())
    assert result['iters'] == 2 and result['params'] > 40e6  # R-50-D8 with its FCN head
