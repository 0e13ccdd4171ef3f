"""Nothing trained is lost: a run killed (SIGKILL) right after its first checkpoint and then
resumed with ``--resume`` ends at the same weights and metrics as an uninterrupted run, in
deterministic mode, for one head of each family (non-local, Hamburger, NLTV)."""
import os.path as osp
import shutil

import pytest
import torch

from tests.helpers import ROOT, demo_cfg_options, make_tiny_demo_data
from tests.test_reliability.cli import finish, metric_lines, run_tool, start_tool

pytestmark = pytest.mark.slow

FAMILIES = {
    'non-local': 'nl',
    'hamburger': 'ham-nmf',
    'nltv': 'nltv-fcn',
}
MAX_ITERS, CHECKPOINT_EVERY = 4, 2


def _demo_config(slug: str) -> str:
    return osp.join(ROOT, 'configs', 'demo', f'{slug}_r18s3-d8_450iter_synthetic-context-64x64.py')


def _crashing_config(tmp_path, slug: str, kill_after: int) -> str:
    path = tmp_path / f'{slug}_crash.py'
    path.write_text(
        f"_base_ = [{_demo_config(slug)!r}]\n"
        "custom_imports = dict(imports=['nlseg', 'tests.test_reliability.crash_hook'], "
        "allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='RNGStateHook'), "
        f"dict(type='SimulatedCrashHook', kill_after_iter={kill_after})]\n")
    return str(path)


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return make_tiny_demo_data(str(tmp_path_factory.mktemp('resume') / 'data'))


def _options(data_root):
    return ['--cfg-options', *demo_cfg_options(data_root, MAX_ITERS, CHECKPOINT_EVERY),
            'randomness.deterministic=True']


def _assert_same_weights(a: str, b: str) -> None:
    sa, sb = torch.load(a)['state_dict'], torch.load(b)['state_dict']
    assert sa.keys() == sb.keys()
    different = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not different, f'weights differ: {different[:5]}'


@pytest.mark.parametrize('slug', FAMILIES.values(), ids=FAMILIES.keys())
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path, data_root, slug):
    full, broken = str(tmp_path / 'full'), str(tmp_path / 'broken')
    opts = _options(data_root)
    # the uninterrupted run and the run that gets killed, side by side
    procs = [start_tool('train', _demo_config(slug), '--work-dir', full, *opts),
             start_tool('train', _crashing_config(tmp_path, slug, CHECKPOINT_EVERY),
                        '--work-dir', broken, *opts)]
    (rc_full, out_full, err_full), (rc_killed, _, err_killed) = [finish(p) for p in procs]
    assert rc_full == 0, err_full[-3000:]
    assert rc_killed == -9, err_killed[-3000:]  # SIGKILL, after the first checkpoint
    assert osp.isfile(osp.join(broken, f'iter_{CHECKPOINT_EVERY}.pth'))
    assert not osp.exists(osp.join(broken, f'iter_{MAX_ITERS}.pth'))

    rc, out, err = run_tool('train', _demo_config(slug), '--work-dir', broken, '--resume',
                            *opts)
    assert rc == 0, err[-3000:]
    log = out + err
    assert f'resumed epoch: 0, iter: {CHECKPOINT_EVERY}' in log
    _assert_same_weights(osp.join(full, f'iter_{MAX_ITERS}.pth'),
                         osp.join(broken, f'iter_{MAX_ITERS}.pth'))
    full_metrics = metric_lines(out_full + err_full)
    assert full_metrics and metric_lines(log) == full_metrics[-1:]


def test_without_the_generator_state_the_resumed_run_drifts(tmp_path, data_root):
    """The control: the same interruption resumed from a checkpoint that lacks the generator
    state (what mmengine alone stores) ends at different weights, because dropout draws a
    different stream. This is why the configs carry RNGStateHook."""
    slug = 'nl'
    full, broken = str(tmp_path / 'full'), str(tmp_path / 'broken')
    opts = _options(data_root)
    procs = [start_tool('train', _demo_config(slug), '--work-dir', full, *opts),
             start_tool('train', _crashing_config(tmp_path, slug, CHECKPOINT_EVERY),
                        '--work-dir', broken, *opts)]
    results = [finish(p) for p in procs]
    assert results[0][0] == 0 and results[1][0] == -9, results[1][2][-3000:]
    ckpt = osp.join(broken, f'iter_{CHECKPOINT_EVERY}.pth')
    state = torch.load(ckpt)
    assert 'rng_state' in state
    del state['rng_state']
    torch.save(state, ckpt)
    rc, _, err = run_tool('train', _demo_config(slug), '--work-dir', broken, '--resume', *opts)
    assert rc == 0, err[-3000:]
    sa = torch.load(osp.join(full, f'iter_{MAX_ITERS}.pth'))['state_dict']
    sb = torch.load(osp.join(broken, f'iter_{MAX_ITERS}.pth'))['state_dict']
    assert any(not torch.equal(sa[k], sb[k]) for k in sa)
    shutil.rmtree(broken)
