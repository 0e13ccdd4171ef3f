"""The mmseg-compatible CLI end to end on the demo data, on CPU, with torch's default
weights_only=True: train -> checkpoint -> --resume -> test --out; dist_train on 2 processes;
readable errors for an unregistered head and a missing data root."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

from tests.helpers import DEMO_FCN_CONFIG, ROOT, demo_cfg_options, free_port, \
    make_tiny_demo_data, tool_env

pytestmark = pytest.mark.slow


def _run(args, timeout=600):
    proc = subprocess.run(args, cwd=ROOT, env=tool_env(), capture_output=True, text=True,
                          timeout=timeout)
    return proc


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('demo') / 'data'))


def test_train_resume_test_round_trip(tmp_path, data_root):
    work = str(tmp_path / 'work')
    opts = demo_cfg_options(data_root, max_iters=2, checkpoint_interval=2)
    proc = _run([sys.executable, 'tools/train.py', DEMO_FCN_CONFIG, '--work-dir', work,
                 '--cfg-options', *opts])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))

    # resume to 4 iterations: the run continues from iteration 2
    opts4 = demo_cfg_options(data_root, max_iters=4, checkpoint_interval=2)
    proc = _run([sys.executable, 'tools/train.py', DEMO_FCN_CONFIG, '--work-dir', work,
                 '--resume', '--cfg-options', *opts4])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'resumed epoch: 0, iter: 2' in out
    ckpt = osp.join(work, 'iter_4.pth')
    state = torch.load(ckpt)  # weights_only=True, the default
    assert state['meta']['iter'] == 4

    pred_dir = str(tmp_path / 'preds')
    proc = _run([sys.executable, 'tools/test.py', DEMO_FCN_CONFIG, ckpt, '--work-dir',
                 str(tmp_path / 'test'), '--out', pred_dir, '--cfg-options', *opts4])
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'mIoU' in out
    preds = sorted(os.listdir(pred_dir))
    assert preds == sorted(os.listdir(osp.join(data_root, 'ann_dir', 'val')))


def test_checkpoint_with_foreign_global_is_refused(tmp_path, data_root):
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': {'hook': os.system}}, evil)
    opts = demo_cfg_options(data_root, max_iters=2, checkpoint_interval=2)
    proc = _run([sys.executable, 'tools/test.py', DEMO_FCN_CONFIG, str(evil), '--work-dir',
                 str(tmp_path / 'w'), '--cfg-options', *opts])
    assert proc.returncode != 0
    assert 'holds the pickled global' in proc.stderr


def test_dist_train_two_cpu_processes(tmp_path, data_root):
    work = str(tmp_path / 'dist')
    opts = demo_cfg_options(data_root, max_iters=2, checkpoint_interval=2)
    env = tool_env()
    env['PYTHON'] = sys.executable
    env['PORT'] = str(free_port())
    proc = subprocess.run(['bash', 'tools/dist_train.sh', DEMO_FCN_CONFIG, '2', '--work-dir',
                           work, '--cfg-options', 'env_cfg.dist_cfg.backend=gloo', *opts],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    assert 'Distributed launcher: pytorch' in out or 'distributed: True' in out


def test_unregistered_head_is_explained(tmp_path, data_root):
    opts = demo_cfg_options(data_root, max_iters=1, checkpoint_interval=1)
    proc = _run([sys.executable, 'tools/train.py', DEMO_FCN_CONFIG, '--work-dir',
                 str(tmp_path / 'w'), '--cfg-options', 'model.decode_head.type=NoSuchHead',
                 *opts])
    err = proc.stderr
    assert proc.returncode != 0
    assert 'NoSuchHead is not registered' in err
    assert 'nlseg imported: yes' in err


def test_missing_data_root_is_explained(tmp_path):
    opts = demo_cfg_options(str(tmp_path / 'missing'), max_iters=1, checkpoint_interval=1)
    proc = _run([sys.executable, 'tools/train.py', DEMO_FCN_CONFIG, '--work-dir',
                 str(tmp_path / 'w'), '--cfg-options', *opts])
    assert proc.returncode != 0
    assert str(tmp_path / 'missing') in proc.stderr
    assert 'make_demo_data' in proc.stderr


def test_amp_without_cuda_is_explained(tmp_path, data_root):
    if torch.cuda.is_available():
        pytest.skip('CUDA present: --amp is supported')
    opts = demo_cfg_options(data_root, max_iters=1, checkpoint_interval=1)
    proc = _run([sys.executable, 'tools/train.py', DEMO_FCN_CONFIG, '--amp', '--work-dir',
                 str(tmp_path / 'w'), '--cfg-options', *opts])
    assert proc.returncode != 0
    assert '--amp needs a CUDA GPU' in proc.stderr
