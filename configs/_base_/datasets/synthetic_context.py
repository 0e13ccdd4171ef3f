# The synthetic long-range-context data set (nlseg's embedded demo): make it with
# `python tools/make_demo_data.py --task context`. Discs whose class is given by a colour key
# on the opposite side of the image; 400 train / 100 val images of 64 x 64.
dataset_type = 'SyntheticContextDataset'
data_root = 'data/synthetic_context_64x64'
crop_size = (64, 64)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # A horizontal flip moves the key and the discs together: the task is unchanged.
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
# Batches of 4: `make demo` trains 27 key-task runs in its 10 minutes (batches of 8 for 500
# iterations took 13 minutes for the whole demo; docs/demo_diagnosis.md)
train_dataloader = dict(
    batch_size=4,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
# 10 images per val batch (same-size images; the same metrics as 1 per batch, faster)
val_dataloader = dict(
    batch_size=10,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# ClassIoUMetric = mmseg's IoUMetric that also returns the per-class IoU.
val_evaluator = dict(type='ClassIoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
