# The real-data CamVid table at CPU scale (tools/analysis/real_data_table.py camvid): the FCN
# baseline every head of the table is compared with, and the shared recipe of its rows.
# - Model: the demo's thin ResNetV1c-18 (3 stages, 16 base channels, output stride 8, no
#   pretrained weights: none can be downloaded in CI) and mmseg's FCNHead; the table's other
#   rows replace `decode_head` only.
# - Data: SegNet's CamVid (tools/dataset_converters/camvid.py), trained on the 367 train
#   images, tested on the 233 test images at a third of the resolution (120 x 160 in, 15 x 20
#   features); the metrics compare the prediction, resized back, with the full 360 x 480 labels.
#   Training flips at random, nothing more: the schedule is short enough that the model does not
#   overfit 367 images.
# - Loss: cross-entropy with SegNet's median-frequency class weights, as the CamVid configs.
# - Schedule: 1500 iterations of batch 4 (16 epochs), SGD lr 0.02 momentum 0.9, poly decay.
# No validation during training: the table tests each run's final weights on the test split.
_base_ = [
    '../_base_/models/fcn_r18-d8_demo.py',
    '../_base_/datasets/camvid.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
crop_size = (120, 160)
segnet_class_weight = [
    0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614
]
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        num_classes=11,
        loss_decode=dict(
            _delete_=True,
            type='ClassWeightedCrossEntropyLoss', class_weight=segnet_class_weight)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(160, 120), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False,
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
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=1500, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=1500)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1500),
    visualization=dict(type='SegVisualizationHook'))
