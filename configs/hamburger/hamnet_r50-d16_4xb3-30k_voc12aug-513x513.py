# HamNet's ablation setting (Geng et al., ICLR 2021, sec. 3.1 and appendix E.1): dilated
# ResNet-50 at output stride 16 (dilation only in the last stage), the same head as E.3 (NMF,
# d = 512, r = 64, K = 6 for training and evaluation, no auxiliary head); SGD with momentum
# 0.9, lr 0.009 with the poly policy (power 0.9, down to 0), weight decay 1e-4, batch 12
# (4 GPUs x 3 images; the paper used one GPU), 30k iterations (34 epochs of the 10582 aug
# images, "about 35" in the paper); 513 x 513 crops as in E.3. Evaluation: VOC 2012 val,
# single scale (the paper reports best (mean) of 5 runs).
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
    backbone=dict(dilations=(1, 1, 1, 2), strides=(1, 2, 2, 1)),
    decode_head=dict(num_classes=21))
train_dataloader = dict(batch_size=3)
optimizer = dict(type='SGD', lr=0.009, momentum=0.9, weight_decay=0.0001)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=30000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=30000, val_interval=3000)
default_hooks = dict(checkpoint=dict(interval=3000))
