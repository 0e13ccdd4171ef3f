# HamNet (Geng et al., "Is Attention Better Than Matrix Decomposition?", ICLR 2021, appendix
# E.3) as its authors build it: a dilated ResNetV1c (output stride 8), a 3x3 conv + BN + ReLU
# squeezing 2048 -> 512 channels, the Hamburger with the NMF ham (d = 512, r = 64 atoms,
# K = 6 iterations, the one-step gradient, bases drawn at random every forward), a 3x3 conv +
# BN + ReLU aligning 512 -> 256 channels, dropout 0.1 and the 1x1 classifier. No auxiliary
# head. The paper recommends the same K for training and evaluation (sec. 3.1, Fig. 4):
# eval_steps = train_steps = 6 here (mmseg's LightHamHead and nlseg's generated ham-* configs
# evaluate with 7). Crops of 513 pair with align_corners=True, as in mmseg's 769 x 769
# configs: the 65 x 65 stride-8 map then lines up with the crop's corner pixels.
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet50_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='HamburgerHead',
        in_channels=2048,
        in_index=3,
        ham_channels=512,
        channels=256,
        ham_type='NMF',
        ham_kwargs=dict(
            MD_S=1,
            MD_R=64,
            train_steps=6,
            eval_steps=6,
            inv_t=1,
            rand_init=True),
        dropout_ratio=0.1,
        num_classes=21,
        norm_cfg=norm_cfg,
        align_corners=True,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None,
    # model training and testing settings
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
