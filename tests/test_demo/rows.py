"""Synthetic finished runs (rows as nlseg.demo.runner.train_one returns them) and the demo
configs, shared by the tests of nlseg.demo."""
import glob
import os.path as osp

from tests.helpers import ROOT

DEMO_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', 'demo', '*.py')))
CONTEXT_CONFIGS = [p for p in DEMO_CONFIGS if '_synthetic-context-' in osp.basename(p)]
REGIONS_CONFIGS = [p for p in DEMO_CONFIGS if '_synthetic-regions-' in osp.basename(p)]


def slug(path):
    return osp.basename(path).split('_')[0]


def row(name, seed, miou, task='context', **metrics):
    """A finished run as nlseg.demo.runner.train_one returns it."""
    return dict(name=name, slug=name.split('_')[0], task=task, seed=seed,
                metrics={'mIoU': miou, 'IoU.background': 90.0 + seed, **metrics},
                params_m=1.0, sec_per_iter=0.1 * (seed + 1), train_seconds=10.0 * (seed + 1),
                pictures=[])


CONTEXT_ROWS = [row('fcn_x', 0, 30.0), row('fcn_x', 1, 34.0), row('fcn_x', 2, 32.0),
                row('nl_x', 0, 90.0), row('nl_x', 1, 41.0), row('nl_x', 2, 95.0),
                row('snl_x', 0, 41.0), row('snl_x', 1, 42.0)]


def regions_rows(miou, isolated, re_score):
    base = [row('fcn-regions_x', s, 80.0, 'regions', isolated_regions=5.0, **{'re/RE': 3.0})
            for s in (0, 1)]
    return base + [row('nltv-regions_x', s, miou, 'regions', isolated_regions=isolated,
                       **{'re/RE': re_score}) for s in (0, 1)]
