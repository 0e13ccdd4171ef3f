"""A truncated checkpoint, or one that carries a foreign pickled global, is refused by
``--resume``, ``load_from`` and tools/test.py with a one-line error that says what is wrong
and what to do (exit status 1, no traceback); torch's weights_only stays on."""
import os
import os.path as osp
import shutil

import pytest
import torch

from tests.helpers import DEMO_FCN_CONFIG, demo_cfg_options, make_tiny_demo_data
from tests.test_reliability.cli import run_tool

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A demo data set and a work dir holding iter_1.pth and iter_2.pth."""
    root = tmp_path_factory.mktemp('refusal')
    data_root = make_tiny_demo_data(str(root / 'data'))
    work = str(root / 'work')
    rc, _, err = run_tool('train', DEMO_FCN_CONFIG, '--work-dir', work, '--cfg-options',
                          *demo_cfg_options(data_root, 2, 1))
    assert rc == 0, err[-3000:]
    return data_root, work


@pytest.fixture
def broken_files(tmp_path, trained):
    _, work = trained
    good = osp.join(work, 'iter_2.pth')
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(open(good, 'rb').read()[:5000])
    foreign = tmp_path / 'foreign.pth'
    state = torch.load(good)
    state['meta']['hook'] = os.system
    torch.save(state, foreign)
    return {'truncated': str(truncated), 'foreign': str(foreign)}


EXPECTED = {
    'truncated': 'could not be read (5000 bytes): the file is truncated or corrupt',
    'foreign': 'was refused: it holds the pickled global',
}


def _assert_refused(rc, err, path, kind):
    assert rc == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f'error: checkpoint {path} '), last
    assert EXPECTED[kind] in last
    assert 'Traceback' not in err


@pytest.mark.parametrize('kind', ['truncated', 'foreign'])
def test_tools_test_refuses(tmp_path, trained, broken_files, kind):
    data_root, _ = trained
    rc, _, err = run_tool('test', DEMO_FCN_CONFIG, broken_files[kind], '--work-dir',
                          str(tmp_path / 'w'), '--cfg-options',
                          *demo_cfg_options(data_root, 2, 1))
    _assert_refused(rc, err, broken_files[kind], kind)


@pytest.mark.parametrize('kind', ['truncated', 'foreign'])
def test_load_from_refuses(tmp_path, trained, broken_files, kind):
    data_root, _ = trained
    rc, _, err = run_tool('train', DEMO_FCN_CONFIG, '--work-dir', str(tmp_path / 'w'),
                          '--cfg-options', *demo_cfg_options(data_root, 1, 1),
                          f'load_from={broken_files[kind]}')
    _assert_refused(rc, err, broken_files[kind], kind)


@pytest.mark.parametrize('kind', ['truncated', 'foreign'])
def test_resume_refuses_and_points_to_the_good_checkpoint(tmp_path, trained, broken_files,
                                                          kind):
    data_root, work = trained
    copy = str(tmp_path / 'work')
    shutil.copytree(work, copy)
    latest = osp.join(copy, 'iter_2.pth')
    shutil.copy(broken_files[kind], latest)
    with open(osp.join(copy, 'last_checkpoint'), 'w') as f:
        f.write(latest)  # what mmengine's CheckpointHook writes after saving iter_2.pth
    rc, _, err = run_tool('train', DEMO_FCN_CONFIG, '--work-dir', copy, '--resume',
                          '--cfg-options', *demo_cfg_options(data_root, 3, 1))
    _assert_refused(rc, err, latest, kind)
    if kind == 'truncated':
        assert 'iter_1.pth' in err.strip().splitlines()[-1]
    # the refused file was not overwritten and nothing was trained
    assert not osp.exists(osp.join(copy, 'iter_3.pth'))
