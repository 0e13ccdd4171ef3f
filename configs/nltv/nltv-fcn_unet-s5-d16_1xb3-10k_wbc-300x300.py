# NLTV paper (Jia, Tai, Liu), WBC stage 2: NL-U-Net of Table 1 (90.80 mIoU, 97.42 accuracy,
# RE 1.59): the U-Net of stage 1 with the NLTV-regularised softmax over the image graph with
# d = 20 neighbours, fine-tuned for 10k iterations at batch 3 (1 GPU x 3 images), SGD momentum
# 0.9, lr 1e-4 (fixed, weight decay 5e-4 as stage 1).
# Start: train stage 1 first (unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py, default work_dir);
# its last checkpoint initialises the backbone and the classifier here, each through its own
# Pretrained init_cfg (prefix backbone. / decode_head.). Not through `load_from`: NLTVHead
# nests the classifier as `base_head`, so the stage-1 keys decode_head.* name no module here
# and load_from (strict=False) would skip them silently. Another stage-1 checkpoint:
# --cfg-options model.backbone.backbone.init_cfg.checkpoint=PATH
# model.decode_head.base_head.init_cfg.checkpoint=PATH
_base_ = [
    '../_base_/models/nltv-fcn_unet-s5-d16_image-graph.py',
    '../_base_/datasets/wbc_no-aug.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
stage1_checkpoint = 'work_dirs/unet-s5-d16_fcn_1xb3-20k_wbc-300x300/iter_20000.pth'
model = dict(
    backbone=dict(
        backbone=dict(
            init_cfg=dict(
                type='Pretrained', checkpoint=stage1_checkpoint,
                prefix='backbone.'))),
    decode_head=dict(
        base_head=dict(
            num_classes=3,
            init_cfg=dict(
                type='Pretrained', checkpoint=stage1_checkpoint,
                prefix='decode_head.')),
        nltv=dict(k=20)))
optimizer = dict(type='SGD', lr=0.0001, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=10000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10000, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
