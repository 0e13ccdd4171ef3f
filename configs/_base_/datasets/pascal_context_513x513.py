# PASCAL Context with the background class (59 classes + background = 60; 4998 train / 5105
# val images), mmseg's `PascalContextDataset`, with HamNet's augmentation (appendix E.3): a
# random 0.5-2x rescale of the image, a horizontal flip and 513 x 513 crops, and nothing else
# (mmseg's pascal_context.py resizes to 520 first, crops 480 and adds a photometric
# distortion). Test: whole image at its own size, single scale; `--tta` runs the multi-scale
# (0.5-1.75) + flip test. Files and splits are mmseg's pascal_context.py.
_base_ = ['mmseg::_base_/datasets/pascal_context.py']
crop_size = (513, 513)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    # Context images (VOC 2010) are at most 500 pixels on a side: fitting them into 500 x 500
    # keeps them at their own size, so the ratio is the 0.5-2x scale of the original image
    dict(
        type='RandomResize',
        scale=(500, 500),
        ratio_range=(0.5, 2.0),
        keep_ratio=True),
    # crops smaller than 513 x 513 are padded by the data preprocessor (labels with 255)
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
