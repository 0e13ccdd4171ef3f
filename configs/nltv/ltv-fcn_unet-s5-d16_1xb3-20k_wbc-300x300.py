# NLTV paper (Jia, Tai, Liu), WBC: the RUnet column of Table 1 (90.15 mIoU, 97.13 accuracy,
# RE 1.30): the U-Net with the LOCAL TV-regularised softmax (4 geometric neighbours, weight 1),
# trained as the paper trains it: "the weights of Unet, RUnet [...] are randomly initialized",
# so with the U-Net's own recipe (unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py: 60 train / 40 test
# images, SGD momentum 0.9, lr 1e-4 fixed, 20k iterations, batch 3), not fine-tuned from it.
# To fine-tune it from stage 1 instead, as the NLTV row is, add the stage-1 checkpoint as
# nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py does (Pretrained init_cfg of the backbone and
# of decode_head.base_head).
_base_ = [
    '../_base_/models/ltv-fcn_unet-s5-d16.py',
    '../_base_/datasets/wbc_no-aug.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(decode_head=dict(base_head=dict(num_classes=3)))
optimizer = dict(type='SGD', lr=0.0001, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=20000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=20000, val_interval=2000)
