# NLTV paper (Jia, Tai, Liu), WBC stage 1: the U-Net baseline of Table 1 (89.79 mIoU, 97.04
# accuracy, RE 1.82), trained from random weights on 60 images of WBC Dataset 2 and tested on
# the other 40 (tools/dataset_converters/wbc.py writes that seeded split): SGD momentum 0.9,
# lr 1e-4, 20k iterations. Batch 3 (1 GPU x 3 images): the paper states 3 for its NL-U-Net and
# no other. Not stated, assumed: a fixed learning rate (the paper's one stated policy, for
# NL-SegNet, is a fixed rate) and mmseg's weight decay 5e-4.
# Its last checkpoint, work_dirs/unet-s5-d16_fcn_1xb3-20k_wbc-300x300/iter_20000.pth, is the
# start of stage 2 (nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py).
_base_ = [
    '../_base_/models/unet-s5-d16_fcn_plain.py',
    '../_base_/datasets/wbc_no-aug.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(decode_head=dict(num_classes=3))
optimizer = dict(type='SGD', lr=0.0001, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=20000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
