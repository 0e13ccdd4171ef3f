"""The real-data CamVid table: the FCN baseline, every nlseg head and the mmseg heads a user
would pick instead, trained on SegNet's CamVid train split and tested on its test split.

Two scales, one set of rows:

* ``cpu`` (default): every row on the shared recipe of
  ``configs/real_data/fcn_r18s3-d8_1xb4-1500iter_camvid-120x160.py`` (the demo's thin ResNetV1c-18,
  120 x 160 input, 1500 iterations of batch 4, SegNet's class weights), the row replacing
  ``decode_head`` only. The nlseg rows take their head from the demo config of the same
  head (``configs/demo/<slug>_r18s3-d8_450iter_synthetic-context-64x64.py``: what we
  recommend at this width), the mmseg rows from :func:`mmseg_head`, at the same width.
  NLTV runs over the FCN with the paper's image graph (d = 10).
* ``paper``: the method configs ``configs/<method>/<slug>_r<depth>-d8_4xb4-20k_camvid-360x480.py``
  (R-50/R-101-D8, 360 x 480, their 20k-iteration schedule), the FCN and mmseg rows on the NL
  config with ``decode_head`` replaced at the configs' width (2048 in, 512 channels). What a
  user runs on a GPU machine (``pretrained`` ImageNet weights are downloaded there).

Every row of both scales is tested by the same evaluators on the 233 test images (mIoU and
per-class IoU, pixel accuracy, isolated regions per image and the RE score).
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Optional, Sequence

from .seed_table import Run, check_rows, schedule_options
from .table_report import RowInfo

#: CamVid's classes (nlseg.datasets.CamVidDataset)
CLASSES = ('Sky', 'Building', 'Pole', 'Road', 'Pavement', 'Tree', 'SignSymbol', 'Fence', 'Car',
           'Pedestrian', 'Bicyclist')
CPU_CONFIG = 'configs/real_data/fcn_r18s3-d8_1xb4-1500iter_camvid-120x160.py'
DEMO_CONFIG = 'configs/demo/{slug}_r18s3-d8_450iter_synthetic-context-64x64.py'
PAPER_CONFIG = 'configs/{folder}/{slug}_r{depth}-d8_4xb4-20k_camvid-360x480.py'
BASELINE = 'fcn'
TITLE = 'CamVid (SegNet\'s copy), {scale} scale: test split, 233 images'
PREAMBLE = (
    'Trained on the 367 train images, tested on the 233 test images against the full '
    '360 x 480 labels. Scale `{scale}`: cpu = every row on '
    '`configs/real_data/fcn_r18s3-d8_1xb4-1500iter_camvid-120x160.py` (thin ResNetV1c-18, output '
    'stride 8, random init, 120 x 160 input, 1500 iterations of batch 4, SegNet class '
    'weights), the row replacing `decode_head`; paper = the R-{depth}-D8 method configs. '
    'mIoU over the seeds: mean, min-max, sample std; the other metrics are seed means. '
    '"isolated / image": connected regions under 64 pixels per test image; RE: predicted '
    'over ground-truth regions (1 is ideal). s/iter: median training iteration, data '
    'loading included; test s: the whole test split; peak MB: peak RSS of the run process '
    'up to the end of training. '
    'Reading: better / worse when every seed of the row is above / below every seed of the '
    'other row, within spread otherwise.')
#: the evaluators of every row (the CPU config's, set on the paper configs too)
TEST_EVALUATOR = [
    dict(type='ClassIoUMetric', iou_metrics=['mIoU']),
    dict(type='IsolatedRegionMetric', size_threshold=64, connectivity=4),
    dict(type='REScoreMetric', connectivity=4, prefix='re'),
]
NLTV_IMAGE_GRAPH = dict(k=10, lam=3.0, tau=0.03, eps=0.5, train_iters=3, lambda1=1.0,
                        lambda2=0.5, sigma_a=40.0, sigma_b=13 / 255, sigma_g=3.0,
                        feature_norm=None)
#: the rows: name, label, implementation, config folder of the paper scale, rows it is read
#: against (the FCN baseline, then the mmseg head a user would pick instead)
ROWS = (
    RowInfo('fcn', 'FCN (baseline)', 'mmseg'),
    RowInfo('nl', 'NL', 'nlseg', ('fcn', 'mmseg-nl')),
    RowInfo('arnl', 'ARNL', 'nlseg', ('fcn', 'mmseg-nl')),
    RowInfo('ns', 'NS', 'nlseg', ('fcn', 'mmseg-nl')),
    RowInfo('snl', 'SNL', 'nlseg', ('fcn', 'mmseg-nl')),
    RowInfo('gsnl', 'gSNL', 'nlseg', ('fcn', 'mmseg-nl')),
    RowInfo('ham-nmf', 'Hamburger NMF', 'nlseg', ('fcn', 'mmseg-lightham')),
    RowInfo('ham-vq', 'Hamburger VQ', 'nlseg', ('fcn', 'mmseg-lightham')),
    RowInfo('ham-cd', 'Hamburger CD', 'nlseg', ('fcn', 'mmseg-lightham')),
    RowInfo('nltv-fcn', 'NLTV over FCN (image graph, d=10)', 'nlseg', ('fcn',)),
    RowInfo('mmseg-nl', 'NLHead', 'mmseg', ('fcn',)),
    RowInfo('mmseg-lightham', 'LightHamHead (NMF)', 'mmseg', ('fcn',)),
    RowInfo('mmseg-psp', 'PSPHead', 'mmseg', ('fcn',)),
    RowInfo('mmseg-da', 'DAHead', 'mmseg', ('fcn',)),
    RowInfo('mmseg-ema', 'EMAHead', 'mmseg', ('fcn',)),
)
ROW_NAMES = tuple(r.name for r in ROWS)
#: nlseg rows: their config folder (paper scale)
FOLDERS = {'nl': 'nl', 'arnl': 'arnl', 'ns': 'ns', 'snl': 'snl', 'gsnl': 'gsnl',
           'ham-nmf': 'hamburger', 'ham-vq': 'hamburger', 'ham-cd': 'hamburger',
           'nltv-fcn': 'nltv'}


def mmseg_head(row: str, in_channels: int, channels: int, in_index: int, num_classes: int,
               norm_cfg: dict, loss_decode: dict, ham_kwargs: Optional[dict] = None) -> dict:
    """The decode head of a baseline or mmseg row: mmseg 1.2.2's head with the settings of
    mmseg's own model bases (``fcn_r50-d8``, ``nonlocal_r50-d8``, ``pspnet_r50-d8``,
    ``danet_r50-d8``, ``emanet_r50-d8``; LightHamHead as SegNeXt's, over one level) at
    ``channels``; ``ham_kwargs`` (LightHamHead) those of the nlseg Hamburger row."""
    common = dict(in_channels=in_channels, in_index=in_index, channels=channels,
                  dropout_ratio=0.1, num_classes=num_classes, norm_cfg=norm_cfg,
                  align_corners=False, loss_decode=copy.deepcopy(loss_decode))
    if row == 'fcn':
        return dict(type='FCNHead', num_convs=2, concat_input=True, **common)
    if row == 'mmseg-nl':
        return dict(type='NLHead', reduction=2, use_scale=True, mode='embedded_gaussian',
                    **common)
    if row == 'mmseg-lightham':
        if ham_kwargs is None:
            raise ValueError("row 'mmseg-lightham' needs ham_kwargs (the Hamburger row's)")
        common.update(in_channels=[in_channels], in_index=[in_index])
        # mmseg's NMF2D takes these keys only (nlseg's grad, eval_seed... are not its)
        mmseg_keys = ('MD_S', 'MD_R', 'train_steps', 'eval_steps', 'inv_t', 'rand_init')
        return dict(type='LightHamHead', ham_channels=channels,
                    ham_kwargs={k: copy.deepcopy(v) for k, v in ham_kwargs.items()
                                if k in mmseg_keys}, **common)
    if row == 'mmseg-psp':
        return dict(type='PSPHead', pool_scales=(1, 2, 3, 6), **common)
    if row == 'mmseg-da':
        return dict(type='DAHead', pam_channels=channels // 8, **common)
    if row == 'mmseg-ema':
        return dict(type='EMAHead', ema_channels=channels, num_bases=64, num_stages=3,
                    momentum=0.1, concat_input=True, **common)
    names = ['fcn'] + [n for n in ROW_NAMES if n.startswith('mmseg')]
    raise ValueError(f'row must be one of {names}, got {row!r}')


def _load(path: str):
    from mmengine.config import Config
    return Config.fromfile(path)


def nltv_over(base_head: dict, backbone: dict, mean, std) -> tuple[dict, dict]:
    """(decode_head, backbone) of NLTV over ``base_head`` with the paper's image graph
    (d = 10): the backbone wrapped in WithImageLevel, the head un-normalising the image with
    the data preprocessor's ``mean`` / ``std``."""
    head = dict(_delete_=True, type='NLTVHead', base_head=copy.deepcopy(base_head),
                graph_source='image', image_index=-1, image_mean=list(mean),
                image_std=list(std), nltv=dict(NLTV_IMAGE_GRAPH))
    return head, dict(_delete_=True, type='WithImageLevel', backbone=copy.deepcopy(backbone))


def data_options(data_root: str, test_images: Optional[int] = None) -> dict:
    """Options of every run of a real-data table: the data root of the train and test
    loaders and :data:`TEST_EVALUATOR`; ``test_images`` keeps the first test images only."""
    options = {'train_dataloader.dataset.data_root': data_root,
               'test_dataloader.dataset.data_root': data_root,
               'test_evaluator': copy.deepcopy(TEST_EVALUATOR)}
    if test_images is not None:  # a pipeline check: the first test images only
        options['test_dataloader.dataset.indices'] = test_images
    return options


def cpu_runs(root: str, data_root: str, seeds: Sequence[int],
             rows: Optional[Sequence[str]] = None, iters: Optional[int] = None,
             test_images: Optional[int] = None) -> list[Run]:
    """The runs of the CPU-scale table (``root``: the repository, holding ``configs/``);
    ``iters`` shortens the schedule, ``test_images`` tests on the first images only (both
    for pipeline checks, not for the table)."""
    rows = check_rows(rows, ROW_NAMES)
    base_path = osp.join(root, CPU_CONFIG)
    base = _load(base_path)
    base_head = base.model.decode_head.to_dict()
    common = data_options(data_root, test_images)
    if iters is not None:
        common.update(schedule_options(iters))
    runs = []
    for row in rows:
        options = dict(common)
        if row == 'nltv-fcn':
            pre = base.model.data_preprocessor
            head, backbone = nltv_over(base_head, base.model.backbone.to_dict(), pre.mean,
                                       pre.std)
            options.update({'model.decode_head': head, 'model.backbone': backbone})
        elif row.startswith('mmseg-'):
            ham = _load(osp.join(root, DEMO_CONFIG.format(slug='ham-nmf')))
            head = mmseg_head(row, 64, base_head['channels'], base_head['in_index'], 11,
                              base_head['norm_cfg'], base_head['loss_decode'],
                              ham.model.decode_head.ham_kwargs.to_dict())
            options['model.decode_head'] = dict(_delete_=True, **head)
        elif row != 'fcn':
            head = _load(osp.join(root, DEMO_CONFIG.format(slug=row))).model.decode_head
            head = head.to_dict()
            head.update(num_classes=11, loss_decode=copy.deepcopy(base_head['loss_decode']))
            options['model.decode_head'] = dict(_delete_=True, **head)
        runs += [Run(row, seed, base_path, copy.deepcopy(options)) for seed in seeds]
    return runs


def paper_runs(root: str, data_root: str, seeds: Sequence[int], depth: int = 50,
               rows: Optional[Sequence[str]] = None, iters: Optional[int] = None,
               pretrained: bool = True, test_images: Optional[int] = None) -> list[Run]:
    """The runs of the paper-scale table: the method configs at ``depth`` (50 or 101);
    ``pretrained=False`` starts from random weights (no download)."""
    if depth not in (50, 101):
        raise ValueError(f'depth must be 50 or 101, got {depth!r}')
    rows = check_rows(rows, ROW_NAMES)
    common = data_options(data_root, test_images)
    common.update({'val_dataloader': None, 'val_cfg': None, 'val_evaluator': None})
    if iters is not None:
        common.update(schedule_options(iters))
    if not pretrained:
        common['model.pretrained'] = None
    nl_path = osp.join(root, PAPER_CONFIG.format(folder='nl', slug='nl', depth=depth))
    runs = []
    for row in rows:
        options = dict(common)
        if row == 'nltv-fcn':
            path = osp.join(root, PAPER_CONFIG.format(folder='nltv', slug=row, depth=depth))
            cfg = _load(path)
            pre = cfg.model.data_preprocessor
            head, backbone = nltv_over(cfg.model.decode_head.base_head.to_dict(),
                                       cfg.model.backbone.to_dict(), pre.mean, pre.std)
            options.update({'model.decode_head': head, 'model.backbone': backbone})
        elif row in FOLDERS:
            path = osp.join(root, PAPER_CONFIG.format(folder=FOLDERS[row], slug=row,
                                                      depth=depth))
        else:
            path = nl_path
            nl_head = _load(nl_path).model.decode_head
            ham = _load(osp.join(root, PAPER_CONFIG.format(folder='hamburger', slug='ham-nmf',
                                                           depth=depth)))
            head = mmseg_head(row, nl_head.in_channels, nl_head.channels, nl_head.in_index,
                              nl_head.num_classes, nl_head.norm_cfg.to_dict(),
                              nl_head.loss_decode.to_dict(),
                              ham.model.decode_head.ham_kwargs.to_dict())
            options['model.decode_head'] = dict(_delete_=True, **head)
        runs += [Run(row, seed, path, copy.deepcopy(options)) for seed in seeds]
    return runs
