# NLTV paper (Jia, Tai, Liu), CamVid: the RSegnet column of Table 3 (57.79 mIoU, RE 2.43): the
# network with the LOCAL TV-regularised softmax (4 geometric neighbours, weight 1), trained as
# the paper trains RSegnet: like the base network ("we also initialize the weights of Segnet
# and RSegnet from the VGG model"), not fine-tuned from it. The plain U-Net stands in for
# SegNet (unet-s5-d16_fcn_1xb4-20k_camvid-360x480.py says why) with that config's recipe:
# 367 training images, batch 4, SGD momentum 0.9, lr 0.001 fixed, SegNet's median-frequency
# class weights, no augmentation, 20k iterations.
_base_ = [
    '../_base_/models/ltv-fcn_unet-s5-d16.py',
    '../_base_/datasets/camvid_no-aug.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
segnet_class_weight = [
    0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614
]
model = dict(
    decode_head=dict(
        base_head=dict(
            num_classes=11, loss_decode=dict(class_weight=segnet_class_weight))))
train_dataloader = dict(batch_size=4)
optimizer = dict(type='SGD', lr=0.001, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=20000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
