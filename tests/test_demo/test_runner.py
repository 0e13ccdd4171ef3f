"""nlseg.demo.runner without training: the schedule, the --cfg-options of a schedule, the
arguments, the threads per run, the scalars of a run, and main() with a stand-in train_one."""
import json
import os.path as osp
import random

import pytest

from nlseg.demo import runner
from tests.test_demo.rows import CONTEXT_CONFIGS, row, slug


def test_schedule_puts_baselines_first_then_slow_configs_then_seed_by_seed():
    configs = ['c/nl_a_synthetic-context-1.py', 'c/fcn_a_synthetic-context-1.py',
               'c/nltv-regions_a_synthetic-regions-1.py',
               'c/fcn-regions_a_synthetic-regions-1.py']
    runs = runner.schedule_runs(configs, [0, 1])
    assert [(slug(c), s) for c, s in runs] == [
        ('fcn', 0), ('fcn', 1), ('fcn-regions', 0), ('fcn-regions', 1),
        ('nltv-regions', 0), ('nltv-regions', 1), ('nl', 0), ('nl', 1)]
    with pytest.raises(ValueError, match='seeds'):
        runner.schedule_runs(configs, [])


def test_read_scalars_takes_the_final_validation(tmp_path):
    path = tmp_path / 'scalars.json'
    records = [dict(loss=1.0, time=9.0, iter=5, step=5),   # warm-up interval, dropped
               dict(loss=0.9, time=0.3, iter=10, step=10),
               dict(loss=0.8, time=0.1, iter=15, step=15),
               dict(loss=0.7, time=0.2, iter=20, step=20),
               dict(mIoU=55.5, **{'IoU.a': 1.0}, data_time=0.1, time=0.05, step=20)]
    path.write_text('\n'.join(json.dumps(r) for r in records) + '\n')
    metrics, sec_per_iter = runner.read_scalars(str(path))
    assert metrics == {'mIoU': 55.5, 'IoU.a': 1.0, 'step': 20}
    assert sec_per_iter == pytest.approx(0.2)
    path.write_text(json.dumps(records[0]) + '\n')
    with pytest.raises(ValueError, match='no validation record'):
        runner.read_scalars(str(path))


def test_schedule_options_and_arguments():
    assert runner.iteration_options(1200) == [
        'train_cfg.max_iters=1200', 'train_cfg.val_interval=1200',
        'default_hooks.checkpoint.interval=1200', 'param_scheduler.0.end=1200',
        'default_hooks.logger.interval=50']
    with pytest.raises(ValueError, match='iters'):
        runner.iteration_options(0)
    default = runner.parse_args([])
    assert default.seeds == [0, 1, 2, 3, 4] and default.schedule_options == []
    assert runner.parse_args(['--full']).schedule_iters == runner.FULL_ITERS
    assert runner.parse_args(['--iters', '7']).schedule_options[0] == 'train_cfg.max_iters=7'
    quick = runner.parse_args(['--quick'])
    assert quick.seeds == [0] and quick.schedule_iters == runner.QUICK_ITERS
    assert runner.parse_args(['--quick', '--seeds', '3', '4']).seeds == [3, 4]
    for bad in (['--jobs', '0'], ['--full', '--iters', '5'], ['--seeds', '1', '1'],
                ['--data-root', 'nope=/tmp']):
        with pytest.raises(SystemExit):
            runner.parse_args(bad)


def test_thread_env_divides_the_cores():
    assert runner.thread_env(2, cores=2)['OMP_NUM_THREADS'] == '1'
    assert runner.thread_env(2, cores=8)['MKL_NUM_THREADS'] == '4'
    assert runner.thread_env(4, cores=2)['OMP_NUM_THREADS'] == '1'
    with pytest.raises(ValueError, match='jobs'):
        runner.thread_env(0)


def test_main_keeps_the_other_runs_when_one_fails(tmp_path, monkeypatch, capsys):
    """main() without training: a stand-in train_one that finishes in a shuffled order
    and fails for one run; the others are aggregated, the failure is named, exit 1."""
    import time as time_module
    configs = [p for p in CONTEXT_CONFIGS if slug(p) in ('fcn', 'nl')]
    launched = []

    def fake_train_one(config, seed, args, data_root, env):
        launched.append((slug(config), seed))
        time_module.sleep(random.Random(len(launched)).uniform(0, 0.05))
        if (slug(config), seed) == ('nl', 1):
            raise RuntimeError('tools/train.py failed (exit 1); log x/train.out:\ntail')
        return dict(row(osp.basename(config)[:-3], seed, 30.0 + 50 * (slug(config) == 'nl')
                        + seed), config=config)

    monkeypatch.setattr(runner, 'train_one', fake_train_one)
    monkeypatch.setattr(runner, 'count_parameters', lambda config: 0.5)
    monkeypatch.setattr(runner, 'prepare_data', lambda task, args: str(tmp_path))
    work = str(tmp_path / 'demo')
    assert runner.main(['--work-dir', work, '--configs', *configs, '--seeds', '0', '1',
                          '--jobs', '2', '--no-vis']) == 1
    assert sorted(launched[:2]) == [('fcn', 0), ('fcn', 1)]  # the baseline first
    out = capsys.readouterr().out
    assert 'nl seed 1: FAILED' in out and '[demo 4/4]' in out
    with open(osp.join(work, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['meta']['failures'] == [
        'nl seed 1: tools/train.py failed (exit 1); log x/train.out:']
    entries = summary['aggregates']['context']
    assert [(e['slug'], e['n'], e['miou']) for e in entries] == [
        ('fcn', 2, [30.0, 31.0]), ('nl', 1, [80.0])]
    assert entries[1]['meets_claim'] is True and entries[1]['params_m'] == 0.5
    md = open(osp.join(work, 'summary.md')).read()
    assert '## Failed runs' in md and '- nl seed 1: tools/train.py failed' in md
    assert osp.getsize(osp.join(work, 'miou.png')) > 0
