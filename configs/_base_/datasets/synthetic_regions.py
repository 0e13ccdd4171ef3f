# The synthetic regions data set (the NLTV demo task, docs/demo_regions.md): Voronoi regions
# of random flat colours whose class (stripe orientation) is visible only through a weak
# texture in pixel noise. 400 train / 25 val images of 64 x 64 (25: the NLTV image graph of a
# 64 x 64 image costs about 0.2 s of one core), made by
# nlseg.datasets.synthetic_regions_generator.generate_synthetic_regions.
dataset_type = 'SyntheticRegionsDataset'
data_root = 'data/synthetic_regions'
crop_size = (32, 32)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # 32 x 32 crops: NLTV's image graph of a crop costs 1/16 of a full image's (O(N^2))
    dict(type='RandomCrop', crop_size=crop_size),
    # a horizontal flip keeps every stripe orientation: the labels are unchanged
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/train', seg_map_path='ann_dir/train'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='img_dir/val', seg_map_path='ann_dir/val'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# mIoU (with per-class IoU), the isolated predicted regions per image (components under 64
# pixels) and the NLTV paper's RE score (predicted / ground-truth regions per image; prefix
# 're': both metrics report a 'regions' count)
val_evaluator = [
    dict(type='ClassIoUMetric', iou_metrics=['mIoU']),
    dict(type='IsolatedRegionMetric', size_threshold=64, connectivity=4),
    dict(type='REScoreMetric', connectivity=4, prefix='re'),
]
test_evaluator = val_evaluator
