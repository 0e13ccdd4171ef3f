# HamNet's PASCAL VOC recipe (Geng et al., ICLR 2021, appendix E.3): ResNet-101 at output
# stride 8, no auxiliary head, K = 6 for training and evaluation; SGD with momentum 0.9,
# lr 0.009 with the poly policy lr * (1 - iter / max_iter)^0.9 (down to 0), weight decay
# 1e-4, SyncBN, batch 16 (4 GPUs x 4 images), 60k iterations; train aug set, random 0.5-2x
# rescale, flip, 513 x 513 crops. Evaluation: VOC 2012 val, single scale (`--tta` for the
# paper's multi-scale + flip test). The paper's 85.9 is on the test server after a further
# fine-tune on trainval at lr 0.0009 (iterations not given), not part of this config.
_base_ = [
    '../_base_/models/hamnet_r50-d8.py',
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
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(num_classes=21))
train_dataloader = dict(batch_size=4)
optimizer = dict(type='SGD', lr=0.009, momentum=0.9, weight_decay=0.0001)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=60000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=60000, val_interval=4000)
