"""nlseg.analysis.seed_table / table_report: runs, their checks, spreads, readings, reports."""
import json
import math
import os
import os.path as osp

import pytest

from nlseg.analysis.seed_table import (CHECKPOINT_OF, Run, aggregate, check_rows, check_runs,
                                       compare, median_iteration_time, read_result,
                                       run_table, schedule_options, spread)
from nlseg.analysis.table_report import RowInfo, write_report

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_run_checks_its_arguments():
    with pytest.raises(ValueError, match='row must be'):
        Run('a b', 0, 'c.py')
    with pytest.raises(ValueError, match='row must be'):
        Run('', 0, 'c.py')
    with pytest.raises(ValueError, match='seed must be'):
        Run('a', -1, 'c.py')
    with pytest.raises(ValueError, match='seed must be'):
        Run('a', True, 'c.py')
    run = Run('ft', 3, 'c.py', {'a': {'b': [CHECKPOINT_OF + 'stage1']}, 'c': 'x'})
    assert run.name == 'ft/seed3' and run.needs() == ['stage1']


def test_check_runs_refuses_duplicates_and_missing_stages():
    check_runs([Run('a', 0, 'c.py'), Run('b', 0, 'c.py', {'x': CHECKPOINT_OF + 'a'})])
    with pytest.raises(ValueError, match='duplicates'):
        check_runs([Run('a', 0, 'c.py'), Run('a', 0, 'd.py')])
    with pytest.raises(ValueError, match="row 'a', seed 1"):
        check_runs([Run('a', 0, 'c.py'), Run('b', 1, 'c.py', {'x': CHECKPOINT_OF + 'a'})])


def test_check_rows_and_schedule_options():
    assert check_rows(None, ('a', 'b')) == ['a', 'b']
    assert check_rows(['b'], ('a', 'b')) == ['b']
    for bad in ([], ['c']):
        with pytest.raises(ValueError, match=r"rows must be a non-empty list of \['a', 'b'\]"):
            check_rows(bad, ('a', 'b'))
    opts = schedule_options(20)
    assert opts['train_cfg.max_iters'] == opts['param_scheduler.0.end'] == 20
    assert opts['default_hooks.checkpoint.interval'] == 20
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match='iters must be'):
            schedule_options(bad)


def test_spread_and_compare():
    s = spread([1.0, 3.0])
    assert (s['mean'], s['min'], s['max'], s['n']) == (2.0, 1.0, 3.0, 2)
    assert s['std'] == pytest.approx(math.sqrt(2.0))  # sample std (n - 1)
    assert spread([5.0])['std'] == 0.0
    with pytest.raises(ValueError, match='values must not be empty'):
        spread([])
    assert compare(spread([4, 5]), spread([1, 3])) == 'better'
    assert compare(spread([1, 3]), spread([4, 5])) == 'worse'
    assert compare(spread([1, 4]), spread([3, 5])) == 'within spread'
    assert compare(spread([3, 4]), spread([3, 5])) == 'within spread'  # ties are not beyond


def _result(row, seed, miou, **extra):
    return dict(row=row, seed=seed, params=10, s_per_iter=0.1 * (seed + 1), peak_rss_mb=100.0
                + seed, train_s=1.0, test_s=2.0, iters=5,
                metrics={'mIoU': miou, 'aAcc': 90.0, 'IoU.a': miou - 1, **extra})


def test_aggregate_and_report(tmp_path):
    results = [_result('base', 0, 10.0), _result('base', 1, 12.0), _result('head', 1, 20.0),
               _result('head', 0, 18.0)]
    table = aggregate(results, ['head', 'base', 'missing'])
    assert list(table) == ['head', 'base']
    assert table['head']['seeds'] == [0, 1]
    assert table['head']['metrics']['mIoU']['values'] == [18.0, 20.0]
    assert table['head']['s_per_iter'] == pytest.approx(0.15)
    assert table['head']['peak_rss_mb'] == 101.0
    rows = [RowInfo('base', 'Base', 'mmseg'), RowInfo('head', 'Head', 'nlseg', ('base',))]
    text = write_report(results, rows, str(tmp_path), 'T', 'pre', classes=('a',),
                        baseline='base')
    assert '| Head | nlseg | 0 1 | 19.00 | 18.00-20.00 | 1.41 |' in text
    assert 'better than Base' in text
    assert '| Head | 18.0 |' in text  # per-class IoU, seed mean
    saved = json.loads((tmp_path / 'summary.json').read_text())
    assert saved['table']['base']['metrics']['mIoU']['mean'] == 11.0
    assert (tmp_path / 'miou.png').stat().st_size > 0


def test_median_iteration_time(tmp_path):
    assert math.isnan(median_iteration_time(str(tmp_path)))
    folder = tmp_path / '20261206_000000' / 'vis_data'
    folder.mkdir(parents=True)
    lines = [dict(loss=1, time=9.0, step=1), dict(loss=1, time=0.2, step=2),
             dict(mIoU=3.0, step=2), dict(loss=1, time=0.4, step=3),
             dict(loss=1, time=0.3, step=4)]
    (folder / 'scalars.json').write_text('\n'.join(json.dumps(x) for x in lines) + '\n')
    assert median_iteration_time(str(tmp_path)) == 0.3  # warm-up left out


def test_run_table_refuses_bad_jobs(tmp_path):
    with pytest.raises(ValueError, match='jobs must be'):
        run_table([Run('a', 0, 'c.py')], str(tmp_path), jobs=0)


@pytest.mark.slow
def test_run_table_trains_tests_resumes_and_reports_failures(tmp_path):
    """Two real runs of the demo FCN (3 iterations, 4 test images), a fine-tune from one of
    them, and a run of a config that does not exist: the good runs finish with their results,
    the bad one is reported, and a rerun runs only the bad one again."""
    from nlseg.datasets.synthetic_context_generator import generate_synthetic_context
    data = tmp_path / 'data'
    generate_synthetic_context(str(data), num_train=8, num_val=4, size=64, seed=0)
    config = osp.join(ROOT, 'configs', 'demo', 'fcn_r18s3-d8_450iter_synthetic-context-64x64.py')
    common = {'train_dataloader.dataset.data_root': str(data),
              'test_dataloader.dataset.data_root': str(data),
              'test_dataloader.dataset.data_prefix': dict(img_path='img_dir/val',
                                                          seg_map_path='ann_dir/val'),
              'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
              'test_dataloader.num_workers': 0, 'test_dataloader.persistent_workers': False,
              'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None,
              **schedule_options(3)}
    runs = [Run('fcn', 0, config, dict(common)), Run('fcn', 1, config, dict(common)),
            Run('ft', 0, config, {**common, 'load_from': CHECKPOINT_OF + 'fcn'}),
            Run('bad', 0, osp.join(str(tmp_path), 'missing.py'), dict(common))]
    work = str(tmp_path / 'work')
    lines, reports = [], []
    with pytest.raises(RuntimeError, match=r"1 run\(s\) failed: \['bad/seed0'\]"):
        run_table(runs, work, jobs=2, threads=1, report=reports.append, log=lines.append)
    assert any('bad/seed0 FAILED' in line for line in lines)
    done = [read_result(work, r) for r in runs[:3]]
    for result in done:
        assert result['iters'] == 3 and 0.0 <= result['metrics']['mIoU'] <= 100.0
        assert result['params'] > 0 and result['s_per_iter'] > 0 and result['peak_rss_mb'] > 0
        assert osp.exists(result['checkpoint'])
    spec = json.loads(open(osp.join(work, 'ft', 'seed0', 'run.json')).read())
    assert spec['options']['load_from'] == done[0]['checkpoint']
    assert len(reports) == 3 and len(reports[-1]) == 3
    lines.clear()
    with pytest.raises(RuntimeError, match='1 run'):
        run_table(runs, work, jobs=1, threads=1, log=lines.append)
    assert lines[0].startswith('4 runs: 3 done before, 1 to run')


def test_run_table_skips_a_run_another_process_finished(tmp_path, monkeypatch):
    """Two processes may share a work dir (disjoint rows, or after a restart): a run that
    gained its result while the table ran is not launched again."""
    import nlseg.analysis.seed_table as seed_table
    work = str(tmp_path)
    runs = [Run('a', 0, 'c.py'), Run('b', 0, 'c.py')]
    launched = []

    class Done:
        returncode = 0

        def poll(self):
            return 0

    def write_result(run, path):
        folder = seed_table.run_dir(work, run)
        os.makedirs(folder, exist_ok=True)
        with open(osp.join(folder, 'result.json'), 'w') as f:
            json.dump(_result(run.row, run.seed, 1.0), f)

    def fake_launch(run, work_dir, threads):
        launched.append(run.name)
        write_result(run, work_dir)
        write_result(runs[1], work_dir)  # meanwhile, another process finished 'b'
        return Done(), 0.0, open(os.devnull, 'w')

    monkeypatch.setattr(seed_table, '_launch', fake_launch)
    lines = []
    results = run_table(runs, work, jobs=1, log=lines.append)
    assert launched == ['a/seed0']
    assert '[2/2] b/seed0: done by another process' in lines
    assert [r['row'] for r in results] == ['a', 'b']
