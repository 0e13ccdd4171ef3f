"""tools/analysis/benchmark_deploy.py on one tiny case writes its table (the compiled row is
exercised by the full run documented in docs/deployment.md; inductor is slow to compile)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import ROOT, tool_env

pytest.importorskip('onnxruntime')
pytestmark = pytest.mark.slow  # a fresh process importing mmseg


def test_benchmark_deploy_one_case(tmp_path):
    out = tmp_path / 'deploy.md'
    cmd = [sys.executable, 'tools/analysis/benchmark_deploy.py', '--cases', 'nonlocal',
           '--only', 'snl', '--size', '8', '--in-channels', '16', '--channels', '8',
           '--repeats', '1', '--warmup', '0', '--no-compile', '--out', str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, env=tool_env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    rows = [line for line in out.read_text().splitlines() if line.startswith('| snl ')]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip('|').split('|')]
    header = [c.strip() for c in out.read_text().splitlines()[2].strip('|').split('|')]
    row = dict(zip(header, cells))
    assert float(row['eager ms']) > 0 and float(row['ORT ms']) > 0
    assert float(row['ORT max abs diff']) < 1e-4 and not row['error']
