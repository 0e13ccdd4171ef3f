# The NLTV paper's WBC table (Table 1) at CPU scale (tools/analysis/real_data_table.py wbc),
# stage 1: the paper's plain U-Net (configs/_base_/models/unet-s5-d16_fcn_plain.py: 5 stages,
# 4 down-samplings, a 1x1 classifier at the image resolution) at a quarter of its width (16
# base channels, not 64), trained from random weights on the 60 training images of WBC Dataset
# 2 (tools/dataset_converters/wbc.py, seed 0) and tested on the other 40, at half the
# resolution (150 x 150 in; the metrics compare the prediction, resized back, with the
# 300 x 300 labels). No augmentation (the paper names none and notes that perturbed colours
# would corrupt its image graph).
# Schedule: 1200 iterations of batch 3 (60 epochs), SGD lr 0.01 momentum 0.9, poly decay (the
# paper's fixed lr 1e-4 for 20k iterations does not train a network from scratch in 1200).
# The fine-tuning stage (the table's other rows) starts from this run's last checkpoint.
_base_ = [
    '../_base_/models/unet-s5-d16_fcn_plain.py',
    '../_base_/datasets/wbc_no-aug.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(backbone=dict(base_channels=16), decode_head=dict(in_channels=16, channels=16,
                                                               num_classes=3))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(150, 150), keep_ratio=True),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(150, 150), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=3, num_workers=0, persistent_workers=False,
    dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(
    num_workers=0, persistent_workers=False, dataset=dict(pipeline=test_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
test_evaluator = [
    dict(type='ClassIoUMetric', iou_metrics=['mIoU']),
    dict(type='IsolatedRegionMetric', size_threshold=64, connectivity=4),
    dict(type='REScoreMetric', connectivity=4, prefix='re'),
]
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=1200, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1200)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1200),
    visualization=dict(type='SegVisualizationHook'))
