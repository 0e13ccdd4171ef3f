"""Every config under configs/ (except the lead's demo) loads, and builds a model that runs.

The unmarked tests load every config and build + run one R50 config per method (and the
UNet NLTV configs); the full sweep over all 74 model configs is marked slow.
"""
from __future__ import annotations

import ast
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
from tests.helpers import ROOT, cpu_model_cfg

CONFIGS = osp.join(ROOT, 'configs')

SLUGS = {'nl': 'nl', 'arnl': 'arnl', 'ns': 'ns', 'snl': 'snl', 'gsnl': 'gsnl',
         'ham-nmf': 'hamburger', 'ham-vq': 'hamburger', 'ham-cd': 'hamburger',
         'nltv-fcn': 'nltv'}
DATASETS = {  # name -> (schedule, num_classes, dataset type)
    'voc12aug-512x512': ('4xb4-40k', 21, 'PascalVOCDataset'),
    'pascal-context-59-480x480': ('4xb4-40k', 59, 'PascalContextDataset59'),
    'camvid-360x480': ('4xb4-20k', 11, 'CamVidDataset'),
    'wbc-300x300': ('4xb4-20k', 3, 'WBCDataset'),
}
UNET = ['configs/nltv/nltv-fcn_unet-s5-d16_4xb4-20k_camvid-360x480.py',
        'configs/nltv/nltv-fcn_unet-s5-d16_4xb4-20k_wbc-300x300.py']


def _rel(path: str) -> str:
    return osp.relpath(path, ROOT)


def matrix() -> list[str]:
    return [f'configs/{folder}/{slug}_{bb}_{DATASETS[ds][0]}_{ds}.py'
            for slug, folder in SLUGS.items() for bb in ('r50-d8', 'r101-d8')
            for ds in DATASETS]


ALL_LEAVES = sorted(_rel(p) for p in glob.glob(osp.join(CONFIGS, '*', '*.py'))
                    if osp.basename(osp.dirname(p)) not in ('_base_', 'demo'))
# the generated matrix; the hand-written paper recipes are tested in test_configs_recipes.py
LEAVES = sorted(set(matrix()) | set(UNET))
FAST = sorted(f'configs/{folder}/{slug}_r50-d8_4xb4-20k_wbc-300x300.py'
              for slug, folder in SLUGS.items()) + UNET


def test_matrix_is_complete():
    expected = set(matrix()) | set(UNET)
    assert len(matrix()) == 72
    assert set(LEAVES) == expected
    assert set(LEAVES) <= set(ALL_LEAVES)  # every generated config is on disk


def test_generated_files_are_up_to_date():
    done = subprocess.run([sys.executable, osp.join('tools', 'misc', 'generate_configs.py'),
                           '--check'], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith('0 file(s) stale')


def inheritance_depth(path: str) -> int:
    """Levels of ``_base_`` below ``path`` (mmseg:: bases count as one level)."""
    with open(path) as f:
        tree = ast.parse(f.read())
    bases: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            value = ast.literal_eval(node.value)
            bases = [value] if isinstance(value, str) else list(value)
    depths = [1 if b.startswith('mmseg::') else
              1 + inheritance_depth(osp.normpath(osp.join(osp.dirname(path), b)))
              for b in bases]
    return max(depths, default=0)


def load(rel: str):
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, rel))


@pytest.mark.parametrize('rel', LEAVES)
def test_config_loads(rel):
    cfg = load(rel)
    assert cfg.custom_imports == dict(imports=['nlseg'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmseg'
    assert inheritance_depth(osp.join(ROOT, rel)) <= 3
    name = osp.basename(rel)[:-3]
    ds = name.rsplit('_', 1)[1]
    schedule, num_classes, ds_type = DATASETS[ds]
    assert cfg.train_dataloader.dataset.type in (ds_type, 'ConcatDataset')
    assert cfg.test_dataloader.dataset.type == ds_type
    assert cfg.train_cfg.max_iters == int(schedule.split('-')[1][:-1]) * 1000
    head = cfg.model.decode_head
    head_classes = head.base_head.num_classes if 'base_head' in head else head.num_classes
    assert head_classes == cfg.model.auxiliary_head.num_classes == num_classes
    if '_r101-d8_' in name:
        assert cfg.model.backbone.depth == 101
        assert cfg.model.pretrained == 'open-mmlab://resnet101_v1c'
    elif '_r50-d8_' in name:
        assert cfg.model.backbone.depth == 50
        assert cfg.model.pretrained == 'open-mmlab://resnet50_v1c'
    if ds == 'pascal-context-59-480x480':
        assert cfg.optim_wrapper.optimizer.lr == 0.004
        assert cfg.optim_wrapper.optimizer.weight_decay == 0.0001
        assert cfg.model.test_cfg == dict(mode='slide', crop_size=(480, 480),
                                          stride=(320, 320))
    # every transform of the data pipelines exists
    from mmseg.registry import TRANSFORMS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    for key in ('train_pipeline', 'test_pipeline'):
        for t in cfg[key]:
            assert TRANSFORMS.get(t['type']) is not None, t['type']


@pytest.mark.parametrize('rel', sorted(
    _rel(p) for p in glob.glob(osp.join(CONFIGS, '_base_', '*', '*.py'))
    if not osp.basename(p).startswith(('synthetic_context', 'fcn_r18-d8_demo', 'demo_'))))
def test_base_loads(rel):
    cfg = load(rel)
    assert ('model' in cfg) or ('train_dataloader' in cfg)


def build_and_run(rel: str) -> None:
    import nlseg  # noqa: F401  (registers the heads and data sets)
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmengine.registry import DefaultScope
    cfg = load(rel)
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cpu_model_cfg(cfg.model.to_dict()))
    # Training mode: NLTV unrolls its few training iterations (in eval mode it iterates to
    # the paper's stopping rule, up to 1500 iterations: minutes on a CPU).
    model.train()
    head = cfg.model.decode_head
    num_classes = head.base_head.num_classes if 'base_head' in head else head.num_classes
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), mode='tensor')
    stride = 1 if 'unet' in rel else 8
    assert out.shape == (1, num_classes, 64 // stride, 64 // stride)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('rel', FAST)
def test_build_and_forward(rel):
    build_and_run(rel)


@pytest.mark.slow
@pytest.mark.parametrize('rel', sorted(set(LEAVES) - set(FAST)))
def test_build_and_forward_all(rel):
    build_and_run(rel)
