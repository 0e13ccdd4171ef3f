"""Per-config params and FLOPs (nlseg.utils.config_resources, tools/analysis/config_resources.py):
a few configs counted afresh agree with their README rows, and --check flags a stale README
or a config changed since it was counted."""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

from nlseg.utils import config_resources as cr
from tests.helpers import ROOT

# the cheapest crops (300 x 300) of three kinds of head: attention (products that mmengine
# misses), Hamburger CD (linalg_solve) and NLTV (solver traced with one iteration)
FEW = ['configs/nl/nl_r50-d8_4xb4-20k_wbc-300x300.py',
       'configs/hamburger/ham-cd_r50-d8_4xb4-20k_wbc-300x300.py',
       'configs/nltv/nltv-fcn_r50-d8_4xb4-20k_wbc-300x300.py']


def _tool_main(argv: list) -> int:
    """The exit status of ``tools/analysis/config_resources.py ARGV`` (a fresh process)."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, 'tools/analysis/config_resources.py', *argv],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600).returncode


@pytest.mark.parametrize('rel', FEW)
def test_few_configs_agree_with_their_readme_row(rel):
    folder, stem = rel.split('/')[1], osp.splitext(osp.basename(rel))[0]
    if stem not in cr.load_resources(ROOT, folder):
        pytest.skip(f'{stem} not counted yet: run tools/analysis/config_resources.py')
    got = cr.config_resources(ROOT, rel)
    assert got['crop'] == [300, 300]
    assert got['fingerprint'] == cr.load_resources(ROOT, folder)[stem]['fingerprint']
    row = cr.readme_table(ROOT, folder)[stem]
    assert row['Crop'] == '300x300'
    assert row['Params (M)'] == f"{got['params'] / 1e6:.2f}"
    assert row['FLOPs (G)'] == f"{got['flops'] / 1e9:.1f}"
    assert row['FLOPs, mmengine (G)'] == f"{got['flops_mmengine'] / 1e9:.1f}"
    # a ResNetV1c-50 (23.5M) and a head over its 2048 channels (Hamburger: 36M in all; the
    # NL family and NLTV's FCN: 47M)
    assert 30e6 < got['params'] < 60e6
    if folder == 'nl':  # the fused attention's products, which mmengine counts zero
        assert got['flops'] > got['flops_mmengine']
    if folder == 'nltv':
        assert got['options'] == cr.NLTV_OPTIONS


def test_every_method_config_has_a_row_in_step_with_resources_json():
    """Every config of a method folder has a row, and the table is what resources.json
    gives (what --check tests besides configs without current figures)."""
    for collection in cr.COLLECTIONS:
        folder = collection.folder
        stems = {osp.splitext(osp.basename(p))[0] for p in cr.config_leaves(ROOT, folder)}
        assert set(cr.readme_table(ROOT, folder)) == stems, folder
        with open(osp.join(ROOT, 'configs', folder, 'README.md'), encoding='utf-8') as f:
            text = f.read()
        assert cr.render_readme(ROOT, folder, text) == text, folder


def test_check_flags_a_stale_readme_and_a_changed_config(tmp_path):
    root = tmp_path / 'repo'
    shutil.copytree(osp.join(ROOT, 'configs'), root / 'configs',
                    ignore=shutil.ignore_patterns('demo', 'real_data'))
    assert _tool_main(['--check', '--folders', 'nl', '--root', str(root)]) == 0
    readme = root / 'configs' / 'nl' / 'README.md'
    good = readme.read_text()
    row = cr.readme_table(str(root), 'nl')['nl_r50-d8_4xb4-20k_wbc-300x300']
    readme.write_text(good.replace(f"| {row['FLOPs (G)']} |", '| 1.0 |', 1))
    assert cr.stale(str(root), ['nl']) == ['configs/nl/README.md: "## Configs" table is stale']
    assert _tool_main(['--check', '--folders', 'nl', '--root', str(root)]) == 1
    assert cr.write_readmes(str(root), ['nl']) == ['configs/nl/README.md']
    assert readme.read_text() == good and cr.stale(str(root), ['nl']) == []
    # a config whose model changed has no figures until it is counted again
    config = root / 'configs' / 'nl' / 'nl_r50-d8_4xb4-20k_wbc-300x300.py'
    text = config.read_text()
    assert 'decode_head=dict(num_classes=3)' in text
    config.write_text(text.replace('decode_head=dict(num_classes=3)',
                                   'decode_head=dict(num_classes=3, channels=256)'))
    # (the R-101 leaf names the same two bases as the R-50 one, not the R-50 leaf: only the
    # R-50 config changed)
    assert cr.stale(str(root), ['nl']) == [
        'configs/nl/nl_r50-d8_4xb4-20k_wbc-300x300.py: no figures for its current model '
        'and crop in configs/nl/resources.json']
