"""The paper-recipe configs follow their papers' training settings.

``RECIPES`` below is the table of the papers' settings, one row per recipe config, written from
the papers (HamNet appendix E.1/E.3, SNL appendix C, the ARNLB authors' mmseg recipes, the NLTV
paper sec. 4); ``assumed`` names the values a paper does not state (the configs' comments say
what was assumed and why). Each loaded config (mmengine ``Config.fromfile``) must match its row,
its file name must match its schedule (``<gpus>xb<per gpu>``, ``<n>k`` iterations or ``<n>e``
epochs), and it must build its model with ``pretrained=None``; a few of them also run a forward.
"""
from __future__ import annotations

import copy
import functools
import glob
import math
import os.path as osp
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from tests.helpers import ROOT, sync_bn_to_bn


SEGNET_CLASS_WEIGHT = [0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418,
                       0.6823, 6.2478, 7.3614]
VOC_AUG_TRAIN_IMAGES = 10582
POLY_TO_ZERO = ('poly', 0.9, 0.0)        # lr * (1 - iter / max_iter)^0.9, ends at 0
MMSEG_POLY = ('poly', 0.9, 1e-4)         # mmseg's schedule_*k.py
FIXED = ('fixed', None, None)
SCALE_FLIP_CROP = ['LoadImageFromFile', 'LoadAnnotations', 'RandomResize', 'RandomCrop',
                   'RandomFlip', 'PackSegInputs']
MMSEG_AUG = ['LoadImageFromFile', 'LoadAnnotations', 'RandomResize', 'RandomCrop',
             'RandomFlip', 'PhotoMetricDistortion', 'PackSegInputs']
MMSEG_VOC_AUG = MMSEG_AUG[:-1] + ['Pad', 'PackSegInputs']  # mmseg's VOC pads in the pipeline
NO_AUG = ['LoadImageFromFile', 'LoadAnnotations', 'PackSegInputs']
OS8 = dict(strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4))
OS16 = dict(strides=(1, 2, 2, 1), dilations=(1, 1, 1, 2))


def row(config, source, *, lr, weight_decay, momentum=0.9, batch, iters, policy, crop,
        num_classes, dataset, train_pipeline, depth=None, stride=None, aux, head,
        epochs=None, norm='SyncBN', align_corners=False, ham=None, insert=None, nltv=None,
        class_weight=None, assumed=()):
    return dict(config=config, source=source, lr=lr, weight_decay=weight_decay,
                momentum=momentum, batch=batch, iters=iters, policy=policy, crop=crop,
                num_classes=num_classes, dataset=dataset, train_pipeline=train_pipeline,
                depth=depth, stride=stride, aux=aux, head=head, epochs=epochs, norm=norm,
                align_corners=align_corners, ham=ham, insert=insert, nltv=nltv,
                class_weight=class_weight, assumed=tuple(assumed))


HAM = dict(ham_type='NMF', ham_channels=512, channels=256, MD_R=64, train_steps=6,
           eval_steps=6, inv_t=1)
SNL_C = 'SNL paper appendix C (Table 10)'
DEEPLAB = dict(lr=0.007, weight_decay=5e-4, batch=16, epochs=50,
               iters=50 * math.ceil(VOC_AUG_TRAIN_IMAGES / 16), policy=POLY_TO_ZERO,
               crop=(513, 513), num_classes=21, dataset='PascalVOCDataset',
               train_pipeline=SCALE_FLIP_CROP, depth=50, stride=OS8, aux=False,
               head='ASPPHead', align_corners=True,
               assumed=('batch', 'policy', 'crop', 'stride', 'train set'))
ARNL_CITYSCAPES = dict(lr=0.01, weight_decay=5e-4, batch=8, crop=(512, 1024), num_classes=19,
                       dataset='CityscapesDataset', train_pipeline=MMSEG_AUG, stride=OS8,
                       aux=True, head='ARNLHead', policy=MMSEG_POLY)
UNET = dict(momentum=0.9, norm='BN', train_pipeline=NO_AUG, crop=None, aux=False,
            head='FCNHead', policy=FIXED)

RECIPES = [
    row('configs/hamburger/hamnet_r101-d8_4xb4-60k_voc12aug-513x513.py', 'HamNet E.3',
        lr=0.009, weight_decay=1e-4, batch=16, iters=60000, policy=POLY_TO_ZERO,
        crop=(513, 513), num_classes=21, dataset='PascalVOCDataset',
        train_pipeline=SCALE_FLIP_CROP, depth=101, stride=OS8, aux=False,
        head='HamburgerHead', align_corners=True, ham=HAM),
    row('configs/hamburger/hamnet_r101-d8_4xb4-25k_pascal-context-513x513.py', 'HamNet E.3',
        lr=0.002, weight_decay=1e-4, batch=16, iters=25000, policy=POLY_TO_ZERO,
        crop=(513, 513), num_classes=60, dataset='PascalContextDataset',
        train_pipeline=SCALE_FLIP_CROP, depth=101, stride=OS8, aux=False,
        head='HamburgerHead', align_corners=True, ham=HAM),
    row('configs/hamburger/hamnet_r50-d16_4xb3-30k_voc12aug-513x513.py', 'HamNet 3.1, E.1',
        lr=0.009, weight_decay=1e-4, batch=12, iters=30000, policy=POLY_TO_ZERO,
        crop=(513, 513), num_classes=21, dataset='PascalVOCDataset',
        train_pipeline=SCALE_FLIP_CROP, depth=50, stride=OS16, aux=False,
        head='HamburgerHead', align_corners=True, ham=HAM, assumed=('crop',)),
    *[row(f'configs/hamburger/hamnet-{ham.lower()}_r50-d16_4xb3-30k_voc12aug-513x513.py',
          'HamNet 3.1, E.1, Table 1', lr=0.009, weight_decay=1e-4, batch=12, iters=30000,
          policy=POLY_TO_ZERO, crop=(513, 513), num_classes=21, dataset='PascalVOCDataset',
          train_pipeline=SCALE_FLIP_CROP, depth=50, stride=OS16, aux=False,
          head='HamburgerHead', align_corners=True, ham=dict(HAM, ham_type=ham, inv_t=100),
          assumed=('crop',)) for ham in ('VQ', 'CD')],
    row('configs/snl/deeplabv3_r50-d8_4xb4-50e_voc12aug-513x513.py', SNL_C, **DEEPLAB),
    row('configs/snl/deeplabv3-snl_r50-d8_4xb4-50e_voc12aug-513x513.py', SNL_C, **DEEPLAB,
        insert=dict(type='SpectralNonLocalBlock', reduction=2, generalized=False)),
    row('configs/gsnl/deeplabv3-gsnl_r50-d8_4xb4-50e_voc12aug-513x513.py', SNL_C, **DEEPLAB,
        insert=dict(type='SpectralNonLocalBlock', reduction=2, generalized=True)),
    row('configs/nl/deeplabv3-nl_r50-d8_4xb4-50e_voc12aug-513x513.py', SNL_C, **DEEPLAB,
        insert=dict(type='NonLocalBlock', reduction=2, mode='dot_product')),
    row('configs/ns/deeplabv3-ns_r50-d8_4xb4-50e_voc12aug-513x513.py', SNL_C, **DEEPLAB,
        insert=dict(type='NonLocalStage', reduction=2, num_units=1)),
    row('configs/arnl/arnl_r50-d8_4xb2-40k_cityscapes-512x1024.py', 'ARNLB repo',
        iters=40000, depth=50, **ARNL_CITYSCAPES),
    row('configs/arnl/arnl_r50-d8_4xb2-80k_cityscapes-512x1024.py', 'ARNLB repo',
        iters=80000, depth=50, **ARNL_CITYSCAPES),
    row('configs/arnl/arnl_r101-d8_4xb2-40k_cityscapes-512x1024.py', 'ARNLB repo',
        iters=40000, depth=101, **ARNL_CITYSCAPES),
    row('configs/arnl/arnl_r101-d8_4xb2-80k_cityscapes-512x1024.py', 'ARNLB repo',
        iters=80000, depth=101, **ARNL_CITYSCAPES),
    row('configs/arnl/arnl_r50-d8_4xb4-40k_voc12aug-512x512.py', 'ARNLB repo',
        lr=0.01, weight_decay=5e-4, batch=16, iters=40000, policy=MMSEG_POLY,
        crop=(512, 512), num_classes=21, dataset='PascalVOCDataset',
        train_pipeline=MMSEG_VOC_AUG,
        depth=50, stride=OS8, aux=True, head='ARNLHead'),
    row('configs/arnl/arnl_r101-d8_4xb4-40k_voc12aug-512x512.py', 'ARNLB repo',
        lr=0.01, weight_decay=5e-4, batch=16, iters=40000, policy=MMSEG_POLY,
        crop=(512, 512), num_classes=21, dataset='PascalVOCDataset',
        train_pipeline=MMSEG_VOC_AUG,
        depth=101, stride=OS8, aux=True, head='ARNLHead'),
    row('configs/arnl/arnl_r101-d8_4xb4-80k_ade20k-512x512.py', 'ARNLB repo',
        lr=0.01, weight_decay=5e-4, batch=16, iters=80000, policy=MMSEG_POLY,
        crop=(512, 512), num_classes=150, dataset='ADE20KDataset', train_pipeline=MMSEG_AUG,
        depth=101, stride=OS8, aux=True, head='ARNLHead'),
    row('configs/nltv/unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py', 'NLTV 4.1',
        lr=1e-4, weight_decay=5e-4, batch=3, iters=20000, num_classes=3,
        dataset='WBCDataset', **UNET, assumed=('weight_decay', 'policy', 'batch')),
    row('configs/nltv/nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py', 'NLTV 4.1',
        lr=1e-4, weight_decay=5e-4, batch=3, iters=10000, num_classes=3,
        dataset='WBCDataset', **UNET, nltv=dict(k=20), assumed=('weight_decay', 'policy')),
    row('configs/nltv/ltv-fcn_unet-s5-d16_1xb3-20k_wbc-300x300.py', 'NLTV 4.1 (RUnet)',
        lr=1e-4, weight_decay=5e-4, batch=3, iters=20000, num_classes=3,
        dataset='WBCDataset', **UNET, nltv=dict(graph='grid'),
        assumed=('weight_decay', 'policy', 'batch')),
    row('configs/nltv/ltv-fcn_unet-s5-d16_1xb4-20k_camvid-360x480.py', 'NLTV 4.2 (RSegnet)',
        lr=0.001, weight_decay=5e-4, batch=4, iters=20000, num_classes=11,
        dataset='CamVidDataset', **UNET, nltv=dict(graph='grid'),
        class_weight=SEGNET_CLASS_WEIGHT, assumed=('weight_decay', 'policy', 'iters')),
    row('configs/nltv/unet-s5-d16_fcn_1xb4-20k_camvid-360x480.py', 'NLTV 4, 4.2',
        lr=0.001, weight_decay=5e-4, batch=4, iters=20000, num_classes=11,
        dataset='CamVidDataset', **UNET, class_weight=SEGNET_CLASS_WEIGHT,
        assumed=('weight_decay', 'policy', 'iters')),
    row('configs/nltv/nltv-fcn_unet-s5-d16_1xb1-3k_camvid-360x480.py', 'NLTV 4.2',
        lr=0.01, weight_decay=5e-4, batch=1, iters=3000, num_classes=11,
        dataset='CamVidDataset', **UNET, nltv=dict(k=10), class_weight=SEGNET_CLASS_WEIGHT,
        assumed=('weight_decay',)),
]
IDS = [osp.basename(r['config'])[:-3] for r in RECIPES]
# recipes of the authors' repository with no published figure (ARNLB publishes Cityscapes only)
UNPUBLISHED = {'configs/arnl/arnl_r50-d8_4xb4-40k_voc12aug-512x512.py',
               'configs/arnl/arnl_r101-d8_4xb4-40k_voc12aug-512x512.py',
               'configs/arnl/arnl_r101-d8_4xb4-80k_ade20k-512x512.py'}
NAME = re.compile(r'_(\d+)xb(\d+)-(\d+)(k|e)_')


@functools.cache
def load(rel: str):
    """The loaded config (cached: the tests only read it; model dicts are copied)."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, rel))


def inner_backbone(model_cfg) -> dict:
    backbone = model_cfg['backbone']
    return backbone['backbone'] if backbone['type'] == 'WithImageLevel' else backbone


def base_head(model_cfg) -> dict:
    head = model_cfg['decode_head']
    return head['base_head'] if head['type'] == 'NLTVHead' else head


def train_datasets(cfg) -> list:
    dataset = cfg.train_dataloader.dataset
    return list(dataset.datasets) if dataset.type == 'ConcatDataset' else [dataset]


def test_table_covers_every_recipe_config():
    """Every hand-written config outside the generated matrix is a recipe row."""
    done = subprocess.run([sys.executable, osp.join('tools', 'misc', 'generate_configs.py'),
                           '--list'], cwd=ROOT, capture_output=True, text=True, check=True)
    generated = set(done.stdout.split())
    assert len(generated) == 72 + 2 + 1  # the matrix, the UNet NLTV configs, docs/configs.md
    leaves = {osp.relpath(p, ROOT) for p in glob.glob(osp.join(ROOT, 'configs', '*', '*.py'))
              if osp.basename(osp.dirname(p)) not in ('_base_', 'demo', 'real_data')}
    recipes = {r['config'] for r in RECIPES}
    assert leaves - generated == recipes - generated
    assert len(recipes) == len(RECIPES)


@pytest.mark.parametrize('recipe', RECIPES, ids=IDS)
def test_recipe_matches_paper(recipe):
    cfg = load(recipe['config'])
    assert cfg.custom_imports == dict(imports=['nlseg'], allow_failed_imports=False)
    assert cfg.default_scope == 'mmseg'

    # optimiser and schedule
    optimizer = cfg.optim_wrapper.optimizer
    assert optimizer.type == 'SGD'
    assert optimizer.lr == pytest.approx(recipe['lr'], rel=0, abs=1e-12)
    assert optimizer.weight_decay == pytest.approx(recipe['weight_decay'], rel=0, abs=1e-12)
    assert optimizer.momentum == recipe['momentum']
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == recipe['iters']
    (scheduler,) = cfg.param_scheduler
    assert (scheduler.begin, scheduler.end, scheduler.by_epoch) == (0, recipe['iters'], False)
    kind, power, eta_min = recipe['policy']
    if kind == 'poly':
        assert scheduler.type == 'PolyLR'
        assert (scheduler.power, scheduler.eta_min) == (power, eta_min)
    else:
        assert (scheduler.type, scheduler.factor) == ('ConstantLR', 1.0)

    # batch: images per GPU x GPUs, both from the file name
    gpus, per_gpu = map(int, NAME.search(recipe['config']).groups()[:2])
    assert cfg.train_dataloader.batch_size == per_gpu
    assert gpus * per_gpu == recipe['batch']
    if gpus == 1:
        assert recipe['norm'] == 'BN'  # SyncBN needs several processes

    # data: classes, data set, augmentation, crop
    datasets = train_datasets(cfg)
    assert {d.type for d in datasets} == {recipe['dataset']}
    assert cfg.test_dataloader.dataset.type == recipe['dataset']
    for dataset in datasets:
        types = [t['type'] for t in dataset.pipeline]
        assert types == recipe['train_pipeline']
        for t in dataset.pipeline:
            if t['type'] == 'RandomResize':
                assert t['ratio_range'] == (0.5, 2.0) and t['keep_ratio']
            if t['type'] == 'RandomCrop':
                assert tuple(t['crop_size']) == recipe['crop']
                if recipe['train_pipeline'] == SCALE_FLIP_CROP:
                    assert t.get('cat_max_ratio', 1.0) == 1.0  # mmseg's 0.75 cap is not theirs
    if recipe['crop'] is None:
        assert cfg.model.data_preprocessor.get('size') is None
    else:
        assert tuple(cfg.model.data_preprocessor.size) == recipe['crop']
    head = base_head(cfg.model)
    assert head.num_classes == recipe['num_classes']
    assert head.type == recipe['head']
    assert head.align_corners == recipe['align_corners']
    if recipe['class_weight'] is None:
        assert head.loss_decode.get('class_weight') is None
    else:
        assert list(head.loss_decode.class_weight) == recipe['class_weight']
        # mmseg's CrossEntropyLoss with class weights fails on ignored (void) pixels
        assert head.loss_decode.type == 'ClassWeightedCrossEntropyLoss'
    if recipe['aux']:
        assert cfg.model.auxiliary_head.num_classes == recipe['num_classes']
    else:
        assert cfg.model.get('auxiliary_head') is None
    assert cfg.model.test_cfg.mode == 'whole'

    # backbone: depth and output stride (stem 4 x the stage strides), norm
    backbone = inner_backbone(cfg.model)
    assert backbone.norm_cfg.type == recipe['norm']
    assert head.norm_cfg.type == recipe['norm']
    if recipe['stride'] is not None:
        assert backbone.depth == recipe['depth']
        assert tuple(backbone.strides) == recipe['stride']['strides']
        assert tuple(backbone.dilations) == recipe['stride']['dilations']
        suffix = f'_r{recipe["depth"]}-d{4 * int(np.prod(backbone.strides))}_'
        assert suffix in recipe['config']
    else:
        assert backbone.type == 'UNet'
        assert cfg.model.pretrained is None  # the paper's U-Net starts from random weights

    # method-specific settings
    if recipe['ham'] is not None:
        ham = recipe['ham']
        assert head.ham_type == ham['ham_type']
        assert (head.ham_channels, head.channels) == (ham['ham_channels'], ham['channels'])
        kwargs = head.ham_kwargs
        assert kwargs.MD_R == ham['MD_R']
        assert kwargs.inv_t == ham.get('inv_t', 1)  # NMF: 1 (its coefficient init)
        # the paper recommends the same K for training and evaluation
        assert kwargs.train_steps == kwargs.eval_steps == ham['train_steps']
    inserts = backbone.get('inserts')
    if recipe['insert'] is None:
        assert not inserts
    else:
        assert backbone.type == 'ResNetV1cWithInserts'
        (insert,) = inserts
        # "right before the last residual block of res4"
        assert (insert.stage, insert.before) == (2, -1)
        for key, value in recipe['insert'].items():
            assert insert.block.get(key, False) == value, key
    head_cfg = cfg.model.decode_head
    if recipe['nltv'] is None:
        assert head_cfg.type != 'NLTVHead'
    else:
        assert head_cfg.type == 'NLTVHead'
        nltv = head_cfg.nltv
        # the paper's solver (sec. 3.5, 4): the same for the local and the nonlocal TV
        assert (nltv.lam, nltv.tau, nltv.eps, nltv.train_iters) == (3.0, 0.03, 0.5, 3)
        if recipe['nltv'].get('graph') == 'grid':
            # ref. [10]: 4 geometric neighbours with weight 1, no image level needed
            assert (head_cfg.graph_source, nltv.graph) == ('grid', 'grid')
            assert cfg.model.backbone.type == 'UNet'
            assert 'init_cfg' not in head_cfg.base_head  # randomly initialised (sec. 4)
        else:
            assert (head_cfg.graph_source, head_cfg.image_index) == ('image', -1)
            assert cfg.model.backbone.type == 'WithImageLevel'
            assert head_cfg.nltv.k == recipe['nltv']['k']  # d of the paper
            # the paper's graph parameters (eq. 11)
            assert (nltv.lambda1, nltv.lambda2, nltv.sigma_a, nltv.sigma_g) == (1.0, 0.5,
                                                                                40.0, 3.0)
            assert nltv.sigma_b == pytest.approx(13 / 255)
            # the head un-normalises the image level with the preprocessor's mean / std
            assert list(head_cfg.image_mean) == list(cfg.model.data_preprocessor.mean)
            assert list(head_cfg.image_std) == list(cfg.model.data_preprocessor.std)
    if recipe['head'] == 'FCNHead':
        # the paper's networks see intensities in [0, 1]
        assert list(cfg.model.data_preprocessor.mean) == [0.0] * 3
        assert list(cfg.model.data_preprocessor.std) == [255.0] * 3


@pytest.mark.parametrize('recipe', RECIPES, ids=IDS)
def test_name_matches_schedule(recipe):
    cfg = load(recipe['config'])
    count, unit = NAME.search(recipe['config']).groups()[2:]
    if unit == 'k':
        assert cfg.train_cfg.max_iters == int(count) * 1000
        assert recipe['epochs'] is None
    else:
        # <n>e: n epochs, each ceil(images / batch) iterations
        assert int(count) == recipe['epochs']
        assert cfg.train_cfg.max_iters == recipe['epochs'] * math.ceil(
            VOC_AUG_TRAIN_IMAGES / recipe['batch'])
    if recipe['crop'] is not None:
        assert recipe['config'].endswith(f'-{recipe["crop"][0]}x{recipe["crop"][1]}.py')


def _build(model_cfg: dict):
    import nlseg  # noqa: F401  (registers nlseg's modules)
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(model_cfg)


def _no_download(model_cfg: dict) -> dict:
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg['pretrained'] = None
    return model_cfg


@pytest.mark.parametrize('recipe', RECIPES, ids=IDS)
def test_recipe_builds(recipe):
    cfg = load(recipe['config'])
    model = _build(_no_download(cfg.model.to_dict()))
    assert type(model).__name__ == 'EncoderDecoder'
    head = model.decode_head.base_head if recipe['nltv'] else model.decode_head
    assert head.num_classes == recipe['num_classes']
    assert model.with_auxiliary_head == recipe['aux']
    if recipe['insert'] is not None:
        backbone = model.backbone
        (name,) = [n for n, _ in backbone.named_modules()
                   if re.fullmatch(r'layer\d\.insert_(before|after)_\d+', n)]
        # res4 of ResNet-50 has 6 residual blocks: the block goes before block 5
        assert name == 'layer3.insert_before_5'
        block = backbone.get_submodule(name)
        assert type(block).__name__ == recipe['insert']['type']
        assert block.in_channels == 1024


def _bn_only(model_cfg: dict) -> dict:
    return sync_bn_to_bn(_no_download(model_cfg))


@pytest.mark.parametrize('config, size, out_stride', [
    ('configs/hamburger/hamnet_r50-d16_4xb3-30k_voc12aug-513x513.py', 65, 16),
    ('configs/snl/deeplabv3-snl_r50-d8_4xb4-50e_voc12aug-513x513.py', 65, 8),
    ('configs/nltv/nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py', 32, 1),
    ('configs/nltv/ltv-fcn_unet-s5-d16_1xb4-20k_camvid-360x480.py', 32, 1),
])
def test_recipe_forward(config, size, out_stride):
    """One training-mode forward (NLTV unrolls its 3 training steps) on a tiny batch of two
    (ASPP's image-pool BN needs more than one value per channel)."""
    cfg = load(config)
    model_cfg = _bn_only(cfg.model.to_dict())
    if cfg.model.backbone.type == 'WithImageLevel':
        model_cfg['backbone']['backbone']['init_cfg'] = None
        model_cfg['decode_head']['base_head']['init_cfg'] = None
    torch.manual_seed(0)
    model = _build(model_cfg)
    model.train()
    with torch.no_grad():
        out = model(torch.rand(2, 3, size, size), mode='tensor')
    num_classes = base_head(cfg.model).num_classes
    side = math.ceil(size / out_stride) if out_stride > 1 else size
    assert out.shape == (2, num_classes, side, side)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('stage1, stage2', [
    ('configs/nltv/unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py',
     'configs/nltv/nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py'),
    ('configs/nltv/unet-s5-d16_fcn_1xb4-20k_camvid-360x480.py',
     'configs/nltv/nltv-fcn_unet-s5-d16_1xb1-3k_camvid-360x480.py'),
])
def test_nltv_fine_tune_starts_from_stage1(stage1, stage2, tmp_path):
    """Stage 2's init_cfg loads every stage-1 weight (backbone and classifier), from the
    stage-1 work_dir's last checkpoint by default."""
    cfg1, cfg2 = load(stage1), load(stage2)
    work_dir = f'work_dirs/{osp.basename(stage1)[:-3]}/iter_{cfg1.train_cfg.max_iters}.pth'
    assert cfg2.stage1_checkpoint == work_dir
    assert cfg2.model.backbone.backbone.init_cfg.checkpoint == work_dir
    assert cfg2.model.decode_head.base_head.init_cfg.checkpoint == work_dir
    assert cfg2.get('load_from') is None

    torch.manual_seed(1)
    first = _build(_no_download(cfg1.model.to_dict()))
    first.init_weights()
    with torch.no_grad():  # make every weight distinct from any initialisation
        for p in first.parameters():
            p.add_(torch.randn_like(p))
    ckpt = tmp_path / 'iter_last.pth'
    torch.save(dict(state_dict=first.state_dict(), meta=dict()), ckpt)

    model_cfg = _no_download(cfg2.model.to_dict())
    model_cfg['backbone']['backbone']['init_cfg']['checkpoint'] = str(ckpt)
    model_cfg['decode_head']['base_head']['init_cfg']['checkpoint'] = str(ckpt)
    torch.manual_seed(2)
    second = _build(model_cfg)
    second.init_weights()
    loaded = second.state_dict()
    # WithImageLevel keeps the UNet's keys; NLTVHead nests the classifier as base_head
    expected = {key.replace('decode_head.', 'decode_head.base_head.', 1): value
                for key, value in first.state_dict().items()}
    assert set(expected) <= set(loaded)
    for key, value in expected.items():
        assert torch.equal(loaded[key], value), key


def _mmseg_base(name: str):
    import mmseg
    from mmengine.config import Config
    return Config.fromfile(osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs', '_base_',
                                    'datasets', name))


def _unscoped(value):
    """A plain copy without mmengine's ``_scope_`` marks (a config reading an ``mmseg::`` base
    carries ``_scope_='mmseg'`` in the dicts it takes from it)."""
    if isinstance(value, dict):
        return {k: _unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_unscoped(v) for v in value)
    return value


@pytest.mark.parametrize('config, name', [
    ('configs/arnl/arnl_r50-d8_4xb2-40k_cityscapes-512x1024.py', 'cityscapes.py'),
    ('configs/arnl/arnl_r50-d8_4xb2-80k_cityscapes-512x1024.py', 'cityscapes.py'),
    ('configs/arnl/arnl_r101-d8_4xb2-40k_cityscapes-512x1024.py', 'cityscapes.py'),
    ('configs/arnl/arnl_r101-d8_4xb2-80k_cityscapes-512x1024.py', 'cityscapes.py'),
    ('configs/arnl/arnl_r101-d8_4xb4-80k_ade20k-512x512.py', 'ade20k.py'),
])
def test_dataset_bases_are_mmseg_s(config, name):
    """Cityscapes and ADE20K are mmseg's own bases, not local copies (docs/configs.md)."""
    assert not osp.exists(osp.join(ROOT, 'configs', '_base_', 'datasets', name))
    ours, theirs = load(config), _mmseg_base(name)
    keys = ('dataset_type', 'data_root', 'crop_size', 'train_pipeline', 'test_pipeline',
            'tta_pipeline', 'train_dataloader', 'val_dataloader', 'test_dataloader',
            'val_evaluator', 'test_evaluator')
    for key in keys:
        assert _unscoped(ours[key]) == _unscoped(theirs[key]), key


def _files(dataset) -> tuple:
    return (dataset.type, dataset.data_root, dataset.get('ann_file'),
            dataset.data_prefix.to_dict())


@pytest.mark.parametrize('ours, theirs', [
    ('pascal_voc12_aug_513x513.py', 'pascal_voc12_aug.py'),
    ('pascal_context_513x513.py', 'pascal_context.py'),
])
def test_513_bases_read_mmseg_s_files(ours, theirs):
    ours, theirs = load(f'configs/_base_/datasets/{ours}'), _mmseg_base(theirs)
    assert [_files(d) for d in train_datasets(ours)] == \
        [_files(d) for d in train_datasets(theirs)]
    assert _files(ours.val_dataloader.dataset) == _files(theirs.val_dataloader.dataset)
    assert _files(ours.test_dataloader.dataset) == _files(theirs.test_dataloader.dataset)
    assert ours.crop_size == (513, 513)
    assert [t['type'] for t in ours.test_pipeline] == NO_AUG  # the image at its own size


@pytest.mark.parametrize('shape', [(375, 500), (500, 333), (281, 500)])
def test_513_rescale_is_relative_to_the_image(shape):
    """RandomResize(scale=(500, 500), ratio 0.5-2) draws a 0.5-2x scale of a VOC image itself
    (VOC and Context images are at most 500 pixels on a side)."""
    from mmseg.registry import TRANSFORMS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = load('configs/_base_/datasets/pascal_voc12_aug_513x513.py')
    (resize_cfg,) = [t for t in cfg.train_pipeline if t['type'] == 'RandomResize']
    resize = TRANSFORMS.build(resize_cfg)
    np.random.seed(0)
    factors = []
    for _ in range(200):
        img = np.zeros((*shape, 3), np.uint8)
        out = resize(dict(img=img, img_shape=shape, ori_shape=shape,
                          gt_seg_map=np.zeros(shape, np.uint8), seg_fields=['gt_seg_map']))
        h, w = out['img'].shape[:2]
        factor = max(h, w) / max(shape)
        assert min(h, w) / min(shape) == pytest.approx(factor, abs=0.01)
        factors.append(factor)
    assert 0.5 - 0.01 <= min(factors) < 0.6 and 1.9 < max(factors) <= 2.0 + 0.01


@pytest.mark.parametrize('recipe', RECIPES, ids=IDS)
def test_recipe_is_documented(recipe):
    """The method README's published results and paper recipes, and docs/recipes.md, link
    the recipe config."""
    rel = recipe['config']
    folder, name = osp.dirname(rel), osp.basename(rel)
    readme = open(osp.join(ROOT, folder, 'README.md')).read()
    published = readme[readme.index('## Published results'):readme.index('## Paper recipes')]
    recipes = readme[readme.index('## Paper recipes'):readme.index('## Our results')]
    if rel not in UNPUBLISHED:
        assert f'(./{name})' in published
    assert f'(./{name})' in recipes
    assert 'Differences from the paper' in recipes
    if recipe['assumed']:  # what the paper leaves unstated is said to be assumed
        assert 'assumed' in recipes
    assert f'(../{rel})' in open(osp.join(ROOT, 'docs', 'recipes.md')).read()


@pytest.mark.parametrize('doc', ['docs/recipes.md'] + [
    f'configs/{m}/README.md' for m in ('hamburger', 'snl', 'gsnl', 'nl', 'ns', 'arnl', 'nltv')])
def test_recipe_doc_links_resolve(doc):
    text = open(osp.join(ROOT, doc)).read()
    links = re.findall(r'\]\(((?:\./|\.\./)[^)#]+)(?:#[^)]*)?\)', text)
    assert links
    for link in links:
        assert osp.exists(osp.normpath(osp.join(ROOT, osp.dirname(doc), link))), link


@pytest.mark.parametrize('recipe', RECIPES, ids=IDS)
def test_recipe_lr_schedule(recipe):
    """The built optimiser and scheduler give the paper's learning rate over the run: poly
    (1 - t / T)^0.9 from lr (to 0 where the paper's formula ends there), or a fixed rate."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    cfg = load(recipe['config'])
    model = torch.nn.Linear(2, 2)
    wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper.to_dict()))
    (scheduler_cfg,) = copy.deepcopy(cfg.param_scheduler)
    scheduler = PARAM_SCHEDULERS.build(dict(scheduler_cfg, optimizer=wrapper))
    total = recipe['iters']
    _, power, eta_min = recipe['policy']
    lrs = {}
    for t in range(total):
        if t in (0, total // 2, total - 1):
            lrs[t] = wrapper.optimizer.param_groups[0]['lr']
        scheduler.step()
    lr = recipe['lr']
    if power is None:
        assert lrs == {0: lr, total // 2: lr, total - 1: lr}
    else:
        # mmengine's PolyLR reaches eta_min at the last iteration: T - 1 in the formula
        for t, value in lrs.items():
            expected = (lr - eta_min) * (1 - t / (total - 1)) ** power + eta_min
            assert value == pytest.approx(expected, rel=1e-4, abs=1e-9), t
