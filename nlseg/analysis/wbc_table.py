"""The NLTV paper's WBC table (Jia, Tai, Liu, Table 1) at CPU scale, on the real WBC Dataset 2.

Stage 1 (row ``unet``): the paper's plain U-Net at a quarter of its width, trained from random
weights (``configs/real_data/unet-s5-d16-c16_fcn_1xb3-1200iter_wbc-150x150.py``). Stage 2,
each from the stage-1 checkpoint of the same seed, :data:`FINETUNE_ITERS` iterations at a
tenth of the learning rate (fixed):

* ``unet-ft``: the plain softmax (the control: the same extra training, no regulariser);
* ``ltv-ft``: the local TV-regularised softmax (the paper's RUnet column; 4-neighbour grid);
* ``nltv-ft``: the NLTV-regularised softmax over the paper's image graph with d = 20
  (its NL-U-Net column).

The paper's Table 1 (full width, 300 x 300, 20k + 10k iterations): U-Net 89.79 mIoU / RE 1.82,
RUnet 90.15 / 1.30, NL-U-Net 90.80 / 1.59.
"""
from __future__ import annotations

import copy
import os.path as osp
from typing import Optional, Sequence

from .camvid_table import NLTV_IMAGE_GRAPH, data_options
from .seed_table import CHECKPOINT_OF, Run, check_rows, schedule_options
from .table_report import RowInfo

CLASSES = ('background', 'cytoplasm', 'nucleus')
CONFIG = 'configs/real_data/unet-s5-d16-c16_fcn_1xb3-1200iter_wbc-150x150.py'
#: iterations of the fine-tuning stage and its (fixed) learning rate
FINETUNE_ITERS = 400
FINETUNE_LR = 0.001
BASELINE = 'unet'
TITLE = 'WBC Dataset 2, NLTV paper Table 1 at {scale} scale: 40 test images'
PREAMBLE = (
    'Seeded split of `tools/dataset_converters/wbc.py` (60 train / 40 test, seed 0). '
    'Stage 1: the paper\'s U-Net at 16 base channels (the paper: 64), 150 x 150 input, '
    '1200 iterations of batch 3 from random weights (SGD lr 0.01, poly). Stage 2 from the '
    f'stage-1 checkpoint of the same seed: {FINETUNE_ITERS} iterations at lr {FINETUNE_LR} '
    '(fixed) with the plain softmax (control), the local-TV softmax (4-neighbour grid) or the '
    'NLTV softmax (image graph, d = 20); 3 unrolled PDHG steps in training, the paper\'s '
    'stopping rule at test. Metrics against the 300 x 300 labels. The paper\'s Table 1 (full '
    'width and resolution, 20k + 10k iterations): U-Net 89.79 mIoU / RE 1.82, RUnet (local '
    'TV) 90.15 / 1.30, NL-U-Net (NLTV) 90.80 / 1.59. mIoU over the seeds: mean, min-max, '
    'sample std; the other metrics are seed means. Reading: better / worse when every seed of '
    'the row is above / below every seed of the other row, within spread otherwise.')
ROWS = (
    RowInfo('unet', 'U-Net (stage 1, from scratch)', 'nlseg'),
    RowInfo('unet-ft', 'U-Net + plain fine-tune', 'nlseg', ('unet',)),
    RowInfo('ltv-ft', 'U-Net + local-TV fine-tune (RUnet)', 'nlseg', ('unet-ft', 'unet')),
    RowInfo('nltv-ft', 'U-Net + NLTV fine-tune (d=20)', 'nlseg', ('unet-ft', 'ltv-ft')),
)
ROW_NAMES = tuple(r.name for r in ROWS)


def _pretrained(prefix: str) -> dict:
    return dict(type='Pretrained', checkpoint=CHECKPOINT_OF + 'unet', prefix=prefix)


def finetune_options(row: str, cfg) -> dict:
    """The options of a stage-2 row over the stage-1 config ``cfg``: the head (and for NLTV
    the image level), each part initialised from the stage-1 checkpoint through its own
    Pretrained init_cfg (NLTVHead nests the classifier as ``base_head``, so ``load_from``
    would miss it), and the fine-tuning schedule."""
    options = schedule_options(FINETUNE_ITERS)
    del options['param_scheduler.0.end']  # the whole scheduler list is replaced
    options.update({
        'optim_wrapper.optimizer.lr': FINETUNE_LR,
        'param_scheduler': [dict(type='ConstantLR', factor=1.0, begin=0, end=FINETUNE_ITERS,
                                 by_epoch=False)]})
    backbone = cfg.model.backbone.to_dict()
    base_head = cfg.model.decode_head.to_dict()
    base_head['init_cfg'] = _pretrained('decode_head.')
    backbone['init_cfg'] = _pretrained('backbone.')
    if row == 'unet-ft':
        options.update({'model.backbone': dict(_delete_=True, **backbone),
                        'model.decode_head': dict(_delete_=True, **base_head)})
    elif row == 'ltv-ft':
        options.update({
            'model.backbone': dict(_delete_=True, **backbone),
            'model.decode_head': dict(
                _delete_=True, type='NLTVHead', base_head=base_head, graph_source='grid',
                nltv=dict(graph='grid', lam=3.0, tau=0.03, eps=0.5, train_iters=3))})
    elif row == 'nltv-ft':
        pre = cfg.model.data_preprocessor
        options.update({
            'model.backbone': dict(_delete_=True, type='WithImageLevel', backbone=backbone),
            'model.decode_head': dict(
                _delete_=True, type='NLTVHead', base_head=base_head, graph_source='image',
                image_index=-1, image_mean=list(pre.mean), image_std=list(pre.std),
                nltv=dict(NLTV_IMAGE_GRAPH, k=20))})
    else:
        raise ValueError(f'row must be one of {list(ROW_NAMES[1:])}, got {row!r}')
    return options


def runs(root: str, data_root: str, seeds: Sequence[int], rows: Optional[Sequence[str]] = None,
         iters: Optional[int] = None, test_images: Optional[int] = None) -> list[Run]:
    """The runs of the table (``root``: the repository, holding ``configs/``); a stage-2 row
    brings its stage-1 run. ``iters`` shortens both stages and ``test_images`` tests on the
    first images only (pipeline checks, not the table)."""
    from mmengine.config import Config
    rows = check_rows(rows, ROW_NAMES)
    if any(r != 'unet' for r in rows) and 'unet' not in rows:
        rows = ['unet'] + rows
    path = osp.join(root, CONFIG)
    cfg = Config.fromfile(path)
    common = data_options(data_root, test_images)
    out = []
    for row in ROW_NAMES:
        if row not in rows:
            continue
        options = dict(common)
        if row != 'unet':
            options.update(finetune_options(row, cfg))
        if iters is not None:
            shorter = schedule_options(iters)
            if row != 'unet':
                del shorter['param_scheduler.0.end']
                options['param_scheduler'] = [dict(options['param_scheduler'][0], end=iters)]
            options.update(shorter)
        out += [Run(row, seed, path, copy.deepcopy(options)) for seed in seeds]
    return out
