"""tools/analysis/benchmark_heads.py runs on tiny sizes and writes its markdown and CSV tables
(the in-process measurements: tests/test_analysis/test_head_benchmark.py)."""
import csv
import os.path as osp
import subprocess
import sys

import pytest

from tests.helpers import ROOT


@pytest.mark.slow  # four fresh processes, each importing mmseg
def test_benchmark_two_heads_tiny(tmp_path):
    out = tmp_path / 'bench'
    cmd = [sys.executable, 'tools/analysis/benchmark_heads.py', '--cases', 'anchors', 'nonlocal',
           '--only', 'mmseg_nlhead', 'snl', '--sizes', '8', '16', '--in-channels', '32',
           '--channels', '16', '--repeats', '1', '--warmup', '0', '--out-dir', str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'})
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(osp.join(out, 'benchmark.csv')) as f:
        rows = list(csv.DictReader(f))
    assert [(r['case'], r['size']) for r in rows] == [
        ('mmseg_nlhead', '8'), ('snl', '8'), ('mmseg_nlhead', '16'), ('snl', '16')]
    for row in rows:
        assert not row['error']
        assert float(row['params_m']) > 0 and float(row['macs_all_g']) >= float(row['macs_g'])
        assert float(row['train_s']) > 0 and float(row['infer_s']) > 0
    nl16 = rows[2]
    assert float(nl16['train_s_ratio']) == 1.0  # the anchor against itself
    table = open(osp.join(out, 'benchmark.md')).read()
    assert table.count('| snl |') == 2 and 'x |' in table
    assert 'N^p' in proc.stdout  # the growth table of a size sweep
