"""The data set converters' command lines (tools/dataset_converters/camvid.py, wbc.py, thin
scripts over nlseg/converters/datasets/): they convert synthetic sources, and a bad source
exits with 1 and one error line, no traceback. The conversions themselves are tested in
tests/test_converters/test_dataset_converters.py."""
from __future__ import annotations

import os
import os.path as osp
import subprocess
import sys

from nlseg.converters.datasets.wbc import split_names
from tests.helpers import ROOT, tool_env
from tests.test_converters.dataset_sources import make_camvid, make_wbc

CONVERTERS = osp.join(ROOT, 'tools', 'dataset_converters')


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, osp.join(CONVERTERS, script), *args],
                          capture_output=True, text=True, cwd=ROOT, env=tool_env(),
                          timeout=120)


def test_clis(tmp_path):
    camvid_src, wbc_src = str(tmp_path / 'CamVid'), str(tmp_path / 'wbc_src')
    make_camvid(camvid_src)
    make_wbc(wbc_src)
    out = str(tmp_path / 'out')

    done = _run('camvid.py', camvid_src, '--out', osp.join(out, 'camvid'))
    assert done.returncode == 0, done.stderr
    assert 'wrote' in done.stdout
    assert len(os.listdir(osp.join(out, 'camvid', 'trainannot'))) == 2

    done = _run('wbc.py', wbc_src, '--out', osp.join(out, 'wbc'), '--train', '3',
                '--seed', '1', '--strays', 'ignore')
    assert done.returncode == 0, done.stderr
    assert '002.png: 3 pixels' in done.stdout
    with open(osp.join(out, 'wbc', 'train.txt')) as f:
        assert f.read().split() == split_names(
            [f'{i:03d}' for i in range(1, 6)], 3, seed=1)[0]

    failed = _run('wbc.py', str(tmp_path / 'nowhere'), '--out', osp.join(out, 'wbc2'))
    assert failed.returncode == 1
    assert 'error: source folder' in failed.stderr and 'does not exist' in failed.stderr
    assert 'Traceback' not in failed.stderr
    assert not osp.exists(osp.join(out, 'wbc2'))
