"""The demo: every demo config builds and runs; the quick variant runs end to end."""
import glob
import json
import os.path as osp

import pytest
import torch

from tests.helpers import ROOT

DEMO_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))
EXPECTED_SLUGS = {'fcn', 'nl', 'arnl', 'ns', 'snl', 'gsnl', 'ham-nmf', 'ham-vq', 'ham-cd',
                  'nltv-fcn'}


def test_every_head_has_a_demo_config():
    slugs = {osp.basename(p).split('_')[0] for p in DEMO_CONFIGS}
    assert slugs == EXPECTED_SLUGS


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=lambda p: osp.basename(p).split('_')[0])
def test_demo_config_builds_and_trains_one_step(path):
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import init_default_scope
    from mmseg.registry import MODELS

    import nlseg  # noqa: F401
    from tests.helpers import random_batch
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['nlseg'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmseg'
    assert cfg.model.pretrained is None
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(random_batch(num_images=2, size=96), optim)
    assert torch.isfinite(log_vars['loss'])
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 96, 96), mode='tensor')
    assert out.shape == (1, 4, 12, 12)


@pytest.mark.slow
def test_quick_demo_end_to_end(tmp_path):
    import sys
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    import run_demo
    configs = [p for p in DEMO_CONFIGS if osp.basename(p).startswith(('fcn_', 'snl_'))]
    work = str(tmp_path / 'demo')
    assert run_demo.main(['--quick', '--work-dir', work, '--configs', *configs]) == 0
    with open(osp.join(work, 'summary.json')) as f:
        rows = json.load(f)
    assert [r['name'].split('_')[0] for r in rows] == ['fcn', 'snl']
    for row in rows:
        assert 0 <= row['metrics']['mIoU'] <= 100
        assert row['iters'] == 20
        assert row['pictures'] and all(
            osp.getsize(osp.join(work, p)) > 0 for p in row['pictures'])
    summary = open(osp.join(work, 'summary.md')).read()
    assert '| fcn_r18' in summary and '| snl_r18' in summary
    assert osp.getsize(osp.join(work, 'miou.png')) > 0
