"""The head benchmark runs on tiny sizes and writes its markdown and CSV tables; every
mmseg context head of ``bench_cases/context.py`` builds and runs one case in-process."""
import csv
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest

from tests.helpers import ROOT

CONTEXT_CASES = ['mmseg_dnlhead', 'mmseg_gchead', 'mmseg_cchead', 'mmseg_emahead',
                 'mmseg_isahead', 'mmseg_ocrhead', 'mmseg_annhead', 'mmseg_psphead',
                 'mmseg_aspphead']


def _harness():
    spec = importlib.util.spec_from_file_location(
        'benchmark_heads', osp.join(ROOT, 'tools', 'analysis', 'benchmark_heads.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_context_heads_build_and_run_tiny():
    """Every mmseg context head row exists and runs the benchmark's measurements (in this
    process, 1 x 32 x 8 x 8, channels 16: a few seconds); DAHead is an anchor."""
    bench = _harness()
    assert 'context' in bench.list_families()
    assert sorted(bench.load_cases('context', 32, 16)) == sorted(CONTEXT_CASES)
    assert 'mmseg_dahead' in bench.load_cases('anchors', 32, 16)
    args = bench.parse_args(['--size', '8', '--in-channels', '32', '--channels', '16',
                             '--repeats', '1', '--warmup', '0'])
    rows = {name: bench.run_case('context', name, args) for name in CONTEXT_CASES}
    for name, row in rows.items():
        assert 'error' not in row, name
        assert row['params_m'] > 0 and row['macs_all_g'] >= row['macs_g'] > 0, name
        assert row['train_s'] > 0 and row['infer_s'] > 0, name
    # the OCR case counts its FCN: more parameters than OCRHead alone
    ocr_alone = sum(p.numel() for p in bench.load_cases('context', 32, 16)['mmseg_ocrhead']()
                    .ocr.parameters()) / 1e6
    assert rows['mmseg_ocrhead']['params_m'] > ocr_alone


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
