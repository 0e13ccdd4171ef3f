"""Data-parallel training with tools/dist_train.sh on 2 CPU processes (gloo): one demo config
per head family trains 3 iterations and ends with bit-identical parameters on both ranks
(checked by ParameterConsistencyHook, which raises otherwise); SyncBN runs multi-process on
gloo (CPUSyncBatchNorm) and single-process (reverted to BN by mmengine)."""
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.helpers import ROOT, demo_cfg_options, free_port, make_tiny_demo_data
from tests.test_reliability.cli import run_tool, tool_env

pytestmark = pytest.mark.slow

ITERS = 3
SYNC_BN = ['model.backbone.norm_cfg.type=SyncBN', 'model.decode_head.norm_cfg.type=SyncBN']


def _checked_config(tmp_path, slug: str) -> str:
    base = osp.join(ROOT, 'configs', 'demo', f'{slug}_r18s3-d8_450iter_synthetic-context-64x64.py')
    path = tmp_path / f'{slug}_checked.py'
    path.write_text(f'_base_ = [{base!r}]\n'
                    "custom_hooks = [dict(type='RNGStateHook'), "
                    "dict(type='ParameterConsistencyHook', interval=1)]\n")
    return str(path)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('dist') / 'data'))


def _dist_train(config: str, work: str, options: list):
    env = tool_env(PYTHON=sys.executable, PORT=str(free_port()))
    return subprocess.run(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', work,
                           '--cfg-options', *options], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize('slug, sync_bn', [('nl', False), ('ham-nmf', True),
                                           ('nltv-fcn', False)],
                         ids=['non-local', 'hamburger-syncbn', 'nltv'])
def test_two_processes_keep_identical_parameters(tmp_path, data_root, slug, sync_bn):
    work = str(tmp_path / 'work')
    options = demo_cfg_options(data_root, ITERS, ITERS) + (SYNC_BN if sync_bn else [])
    proc = _dist_train(_checked_config(tmp_path, slug), work, options)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert 'Distributed launcher: pytorch' in log
    # checked after every iteration and after training, on both ranks (rank 0 logs)
    assert log.count('parameters identical on all 2 processes') >= ITERS
    state = torch.load(osp.join(work, f'iter_{ITERS}.pth'))
    assert state['meta']['iter'] == ITERS
    assert len(state['rng_state']['per_rank']) == 2  # RNGStateHook kept both ranks' states
    if sync_bn:
        # the synchronised running statistics moved away from their initial values
        means = [v for k, v in state['state_dict'].items() if k.endswith('running_mean')]
        assert means and all(bool(m.abs().sum() > 0) for m in means)


def test_sync_bn_config_single_process_is_reverted_to_bn(tmp_path, data_root):
    options = demo_cfg_options(data_root, 2, 2) + SYNC_BN
    rc, out, err = run_tool('train', osp.join(ROOT, 'configs/demo/nl_r18s3-d8_450iter_'
                                              'synthetic-context-64x64.py'),
                            '--work-dir', str(tmp_path / 'w'), '--cfg-options', *options)
    assert rc == 0, err[-3000:]
    assert 'SyncBatchNorm (SyncBN) layers in the model will be automatically reverted' in out + err
