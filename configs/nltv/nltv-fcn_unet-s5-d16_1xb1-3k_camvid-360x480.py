# NLTV paper (Jia, Tai, Liu), CamVid stage 2: NL-SegNet of Table 3 (57.35 -> 59.84 mIoU) as
# trained there: the stage-1 network with the NLTV-regularised softmax over the image graph
# with d = 10 neighbours, SegNet's median-frequency class weights, fine-tuned for 3k
# iterations at batch 1, SGD momentum 0.9 with the learning rate fixed to 0.01 (sec. 4.2
# states 0.01 for this fine-tune and 0.001 for the SegNet family in sec. 4; this config
# follows the fine-tune's own statement). Weight decay 5e-4 as stage 1.
# Start: train stage 1 first (unet-s5-d16_fcn_1xb4-20k_camvid-360x480.py, default work_dir);
# its last checkpoint initialises the backbone and the classifier through their Pretrained
# init_cfg (see nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py for why not `load_from`).
_base_ = [
    '../_base_/models/nltv-fcn_unet-s5-d16_image-graph.py',
    '../_base_/datasets/camvid_no-aug.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_20k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
stage1_checkpoint = 'work_dirs/unet-s5-d16_fcn_1xb4-20k_camvid-360x480/iter_20000.pth'
segnet_class_weight = [
    0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478, 7.3614
]
model = dict(
    backbone=dict(
        backbone=dict(
            init_cfg=dict(
                type='Pretrained', checkpoint=stage1_checkpoint,
                prefix='backbone.'))),
    decode_head=dict(
        base_head=dict(
            num_classes=11,
            loss_decode=dict(
                type='ClassWeightedCrossEntropyLoss', class_weight=segnet_class_weight),
            init_cfg=dict(
                type='Pretrained', checkpoint=stage1_checkpoint,
                prefix='decode_head.')),
        nltv=dict(k=10)))
train_dataloader = dict(batch_size=1)
optimizer = dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0, begin=0, end=3000, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=3000, val_interval=1000)
default_hooks = dict(checkpoint=dict(interval=1000))
