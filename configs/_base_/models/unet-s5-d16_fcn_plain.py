# The plain U-Net of the NLTV paper's experiments (Jia, Tai, Liu, sec. 4): mmseg's UNet
# (s5-d16: 5 stages, 4 down-samplings, 64 base channels, two 3x3 convs per stage) with only a
# 1x1 classifier on its last decoder level (FCNHead with no conv and no dropout) and no
# auxiliary head (mmseg's fcn_unet_s5-d16.py adds a 3x3 conv, dropout and an auxiliary head).
# Trained from random weights. The paper rescales image intensities to [0, 1] (sec. 4):
# mean 0, std 255; the graph's colour scale sigma_b = 13/255 of eq. 11 is in these units.
# BN, not SyncBN: the paper's batches of 1-4 images run on one GPU.
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # UNet s5-d16 needs sides divisible by 16: pad training and test images (the padding
    # is ignored by the loss and cropped from the prediction)
    size_divisor=16,
    test_cfg=dict(size_divisor=16))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='UNet',
        in_channels=3,
        base_channels=64,
        num_stages=5,
        strides=(1, 1, 1, 1, 1),
        enc_num_convs=(2, 2, 2, 2, 2),
        dec_num_convs=(2, 2, 2, 2),
        downsamples=(True, True, True, True),
        enc_dilations=(1, 1, 1, 1, 1),
        dec_dilations=(1, 1, 1, 1),
        with_cp=False,
        conv_cfg=None,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'),
        norm_eval=False),
    decode_head=dict(
        type='FCNHead',
        in_channels=64,
        in_index=4,
        channels=64,
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None,
    # model training and testing settings
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
