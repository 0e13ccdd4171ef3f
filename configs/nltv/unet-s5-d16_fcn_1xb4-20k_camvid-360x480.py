# NLTV paper (Jia, Tai, Liu), CamVid stage 1: the baseline network trained as SegNet is on
# CamVid (sec. 4.2): the 367 training images, batch 4 (1 GPU x 4 images), SGD momentum 0.9,
# lr 0.001 (fixed), cross-entropy with SegNet's median-frequency class weights, no
# augmentation. The paper's network is SegNet (VGG-16 encoder from ImageNet weights), which
# mmseg does not provide: the plain U-Net of the WBC recipe stands in, from random weights.
# Not stated, assumed: 20k iterations (the paper's U-Net length), weight decay 5e-4.
# Its last checkpoint, work_dirs/unet-s5-d16_fcn_1xb4-20k_camvid-360x480/iter_20000.pth, is
# the start of stage 2 (nltv-fcn_unet-s5-d16_1xb1-3k_camvid-360x480.py).
_base_ = [
    '../_base_/models/unet-s5-d16_fcn_plain.py',
    '../_base_/datasets/camvid_no-aug.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
segnet_class_weight = [
    0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614
]
# ClassWeightedCrossEntropyLoss: mmseg 1.2.2's CrossEntropyLoss with class weights raises an
# IndexError on CamVid's void (ignored) pixels; this one is PyTorch's weighted mean over the
# pixels that are not ignored.
model = dict(
    decode_head=dict(
        num_classes=11,
        loss_decode=dict(
            type='ClassWeightedCrossEntropyLoss', class_weight=segnet_class_weight)))
train_dataloader = dict(batch_size=4)
optimizer = dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=20000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
