"""The demo's command lines end to end: ``tools/run_demo.py --quick`` (train, validate,
pictures, summary files) and ``tools/make_demo_data.py``. The library (nlseg.demo: tasks,
runner, report) is tested in tests/test_demo."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from tests.helpers import ROOT, tool_env
from tests.test_demo.rows import CONTEXT_CONFIGS, slug

pytestmark = pytest.mark.slow  # each test starts python processes that import the stack


def _run(args, timeout=600):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=tool_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_make_demo_data_command_line(tmp_path):
    out = str(tmp_path / 'context')
    proc = _run(['tools/make_demo_data.py', '--task', 'context', '--num-train', '2',
                 '--num-val', '1', '--out', out])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == f'context: wrote {out}'
    assert len(os.listdir(osp.join(out, 'img_dir', 'train'))) == 2
    assert len(os.listdir(osp.join(out, 'ann_dir', 'val'))) == 1
    proc = _run(['tools/make_demo_data.py', '--out', out])
    assert proc.returncode == 2 and '--out needs a single --task' in proc.stderr


def test_run_demo_help_names_every_option():
    proc = _run(['tools/run_demo.py', '--help'])
    assert proc.returncode == 0, proc.stderr[-3000:]
    for option in ('--configs', '--seeds', '--jobs', '--work-dir', '--full', '--iters',
                   '--quick', '--test', '--no-vis', '--cfg-options', '--data-root'):
        assert option in proc.stdout


def test_quick_demo_end_to_end(tmp_path):
    configs = [p for p in CONTEXT_CONFIGS if slug(p) in ('fcn', 'snl')]
    work = str(tmp_path / 'demo')
    argv = ['--quick', '--work-dir', work, '--configs', *configs, '--seeds', '0', '1',
            '--jobs', '2']
    proc = _run(['tools/run_demo.py', *argv], timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '[demo 4/4]' in proc.stdout and 'written to' in proc.stdout
    with open(osp.join(work, 'summary.json')) as f:
        summary = json.load(f)
    assert summary['meta']['command'] == ['python', 'tools/run_demo.py', *argv]
    runs = summary['runs']
    assert sorted((r['slug'], r['seed']) for r in runs) == [
        ('fcn', 0), ('fcn', 1), ('snl', 0), ('snl', 1)]
    for run in runs:
        assert 0 <= run['metrics']['mIoU'] <= 100
        assert run['iters'] == run['metrics']['step'] == 20
        assert osp.isfile(osp.join(work, run['checkpoint']))
        # pictures for the first seed only
        assert bool(run['pictures']) == (run['seed'] == 0)
        assert all(osp.getsize(osp.join(work, p)) > 0 for p in run['pictures'])
    entries = summary['aggregates']['context']
    assert [(e['slug'], e['n']) for e in entries] == [('fcn', 2), ('snl', 2)]
    assert summary['meta']['jobs'] == 2 and summary['meta']['threads_per_job'] >= 1
    md = open(osp.join(work, 'summary.md')).read()
    assert '| fcn | 2 |' in md and '| snl | 2 |' in md
    assert 'meets claim' in md and 'wall time' in md and '![mIoU per head](miou.png)' in md
    assert osp.getsize(osp.join(work, 'miou.png')) > 0
