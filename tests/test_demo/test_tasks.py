"""nlseg.demo.tasks: every demo head has a config of its task, every task is defined once
(configs, baseline, data generator and folder, claim), the data a task makes, and every demo
config builds and trains a step."""
import math
import os
import os.path as osp

import pytest
import torch

from nlseg.demo import tasks
from tests.helpers import ROOT
from tests.test_demo.rows import CONTEXT_CONFIGS, DEMO_CONFIGS, REGIONS_CONFIGS, slug

EXPECTED_SLUGS = {'fcn', 'nl', 'arnl', 'ns', 'snl', 'gsnl', 'ham-nmf', 'ham-vq', 'ham-cd',
                  'nltv-fcn', 'mmseg-nl', 'mmseg-lightham', 'snl-authors', 'gsnl-authors',
                  'ns-authors'}
EXPECTED_REGIONS_SLUGS = {'fcn-regions', 'nltv-regions'}


def test_every_head_has_a_demo_config():
    assert {slug(p) for p in CONTEXT_CONFIGS} == EXPECTED_SLUGS
    # the regions task is optional (being built); when it is there, it is complete
    if REGIONS_CONFIGS:
        assert {slug(p) for p in REGIONS_CONFIGS} == EXPECTED_REGIONS_SLUGS
    # every demo config belongs to exactly one task
    assert sorted(CONTEXT_CONFIGS + REGIONS_CONFIGS) == DEMO_CONFIGS
    assert {tasks.config_task(p) for p in CONTEXT_CONFIGS} == {'context'}


def test_config_task_from_the_name():
    assert tasks.config_task('x/nl_r18_600iter_synthetic-context-96x96.py') == 'context'
    assert tasks.config_task('x/fcn-regions_u_300iter_synthetic-regions-64x64.py') == \
        'regions'
    with pytest.raises(ValueError, match='no demo task'):
        tasks.config_task('x/nl_r50-d8_4xb4-40k_voc12aug-512x512.py')


def test_every_task_is_defined_once_and_complete():
    assert list(tasks.TASKS) == ['context', 'regions']
    from nlseg.datasets.synthetic_context_generator import generate_synthetic_context
    from nlseg.datasets.synthetic_regions_generator import generate_synthetic_regions
    assert tasks.generator('context') is generate_synthetic_context
    assert tasks.generator('regions') is generate_synthetic_regions
    assert tasks.TASKS['context'].data_dir() == osp.join(ROOT, 'data',
                                                         'synthetic_context_64x64')
    assert tasks.TASKS['regions'].data_dir('/r') == osp.join('/r', 'data', 'synthetic_regions')
    assert tasks.BASELINE_SLUGS == ('fcn', 'fcn-regions')
    for name, task in tasks.TASKS.items():
        assert task.name == name and task.title and task.claim_rule.startswith('meets claim')
        configs = tasks.task_configs(name)
        assert configs and all(tasks.config_task(c) == name for c in configs)
        # the baseline is one of the task's configs
        assert [c for c in configs if tasks.config_slug(c) == task.baseline]
    # the anchors and the special lists name demo configs
    slugs = {slug(p) for p in DEMO_CONFIGS}
    assert set(tasks.ANCHORS) | set(tasks.ANCHORS.values()) <= slugs
    assert set(tasks.NOT_BENCHMARKED) | set(tasks.SLOW_FIRST) <= slugs
    assert tasks.DEFAULT_SEEDS == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError, match='task must be one of'):
        tasks.task_configs('nope')
    with pytest.raises(ValueError, match='task must be one of'):
        tasks.meets_claim('nope', {}, {})


def test_default_run_is_every_task_less_the_not_benchmarked():
    configs = tasks.demo_configs()
    assert configs == sorted(configs)
    assert {slug(p) for p in configs} == (
        {slug(p) for p in CONTEXT_CONFIGS + REGIONS_CONFIGS} - set(tasks.NOT_BENCHMARKED))


def test_context_claim_margin_on_the_seed_means():
    base = dict(miou_mean=30.0)
    assert tasks.meets_claim('context', dict(miou_mean=40.0), base) is True
    assert tasks.meets_claim('context', dict(miou_mean=39.99), base) is False
    # the regions claim needs its metrics on both sides
    assert tasks.meets_claim('regions', dict(miou_mean=90.0), dict(miou_mean=80.0)) is None


def test_make_task_data_takes_the_configs_image_side_else_the_generators(tmp_path):
    import inspect

    import cv2
    # the context configs name their side; the regions configs none: the generator's default
    assert tasks.task_image_size('context') == 64
    assert tasks.task_image_size('regions') is None
    for name in tasks.TASKS:
        side = tasks.task_image_size(name) or \
            inspect.signature(tasks.generator(name)).parameters['size'].default
        out = tasks.make_task_data(name, str(tmp_path / name), num_train=2, num_val=1)
        assert out == str(tmp_path / name)
        assert len(os.listdir(osp.join(out, 'img_dir', 'train'))) == 2
        val = os.listdir(osp.join(out, 'img_dir', 'val'))
        assert len(val) == 1
        assert cv2.imread(osp.join(out, 'img_dir', 'val', val[0])).shape[:2] == (side, side)


def _input_size(cfg):
    """The (H, W) a demo config's model sees: the data preprocessor's size, else the
    data set's crop size."""
    size = cfg.model.data_preprocessor.get('size') or cfg.get('crop_size')
    assert size is not None, 'the config names neither data_preprocessor.size nor crop_size'
    return tuple(size)


def _output_stride(cfg):
    """Output stride of the demo model: 4 (stem) x the product of the ResNet stage strides;
    1 for the full-resolution UNet models."""
    backbone = cfg.model.backbone
    backbone = backbone.get('backbone', backbone)  # WithImageLevel wraps the real one
    if 'strides' in backbone and 'ResNet' in backbone['type']:
        return 4 * math.prod(backbone['strides'])
    return 1


@pytest.mark.parametrize('path', DEMO_CONFIGS, ids=slug)
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
    assert cfg.model.get('pretrained') is None
    # the demo runner reads the metrics of the final validation: it must happen at max_iters
    assert cfg.train_cfg.val_interval == cfg.train_cfg.max_iters
    h, w = _input_size(cfg)
    assert h == w
    num_classes = cfg.model.decode_head.get('num_classes') or \
        cfg.model.decode_head.base_head.num_classes
    init_default_scope('mmseg')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log_vars = model.train_step(random_batch(num_images=2, size=h, num_classes=num_classes),
                                optim)
    assert torch.isfinite(log_vars['loss'])
    model.eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, h, w), mode='tensor')
    stride = _output_stride(cfg)
    assert out.shape == (1, num_classes, h // stride, w // stride)
