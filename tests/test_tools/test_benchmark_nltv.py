"""tools/analysis/benchmark_nltv.py: the graph and recipe measurements at tiny sizes, each in
the fresh process the benchmark uses (``--child SPEC``)."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'analysis', 'benchmark_nltv.py')


def child(**spec):
    spec = dict(dict(device='cpu', threads=1), **spec)
    env = dict(os.environ, OMP_NUM_THREADS='1')
    out = subprocess.run([sys.executable, TOOL, '--child', json.dumps(spec)], cwd=ROOT,
                         capture_output=True, text=True, timeout=600, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_image_graph_reports_the_proof_and_the_equality_with_the_dense_search():
    r = child(kind='image_graph', h=40, w=48, k=10, impl='efficient', check=True,
              repeat=True)
    assert r['equal'] is True
    assert r['ms'] > 0 and r['dense_ms'] > 0
    radius, searched, proved = r['levels'][0]
    assert (radius, searched) == (3, 40 * 48) and 0 < proved <= searched


@pytest.mark.slow
def test_recipe_step_and_nltv_parts_at_a_tiny_size():
    r = child(kind='recipe_step', model='NLTV', h=32, w=32, batch=2, solve=True)
    assert r['ms'] > 0 and r['solve_ms'] > 0 and r['mb'] >= 0
    r = child(kind='recipe_step', model='local TV', h=32, w=32, batch=2)
    assert r['ms'] > 0 and 'solve_ms' not in r
    r = child(kind='nltv_parts', h=32, w=32, batch=2, k=8)
    assert r['graph_ms'] > 0 and r['saved_mb'] > 0


def test_unknown_section_is_refused():
    out = subprocess.run([sys.executable, TOOL, '--sections', 'graphs'], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and 'unknown' in out.stderr
