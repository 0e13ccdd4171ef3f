# The DeepLab baseline of the SNL paper's appendix C (Table 10, "R-50": 71.3 mIoU on VOC 2012
# val): mmseg's DeepLabV3 (ASPP, rates 12/24/36 at output stride 8) on a dilated ResNetV1c-50,
# no auxiliary head. Stated by the paper: SGD, lr 0.007, momentum 0.9, weight decay 5e-4, 50
# epochs. Not stated, DeepLab's own recipe assumed: VOC 2012 with the SBD aug set (10582
# images), batch 16 (4 GPUs x 4 images), poly lr (power 0.9, down to 0), random 0.5-2x rescale,
# flip and 513 x 513 crops, single-scale whole-image test.
# 50 epochs as iterations: an epoch of 10582 images in batches of 16 is ceil(10582 / 16) = 662
# iterations (the last batch partial, as a PyTorch DataLoader without drop_last counts it), so
# 50 epochs = 50 x 662 = 33100 iterations; validation and checkpoints every 5 epochs (3310).
# `50e` in the name is that epoch count (OpenMMLab's `<n>e` convention).
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py',
    '../_base_/datasets/pascal_voc12_aug_513x513.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
crop_size = (513, 513)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    # 513 crops give a 65 x 65 stride-8 map that lines up with the corner pixels
    decode_head=dict(num_classes=21, align_corners=True),
    auxiliary_head=None)
train_dataloader = dict(batch_size=4)
optimizer = dict(type='SGD', lr=0.007, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=33100, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=33100, val_interval=3310)
default_hooks = dict(checkpoint=dict(interval=3310))
