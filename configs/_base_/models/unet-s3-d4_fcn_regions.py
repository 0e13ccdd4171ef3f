# The small full-resolution model of the regions demo: mmseg's UNet with 3 stages (2
# down-samplings, 8 base channels, two 3x3 convs per stage; receptive field of about 30
# pixels) and a 1x1 classifier on its last, full-resolution decoder level (FCNHead with no
# conv and no dropout), as the plain U-Net of the NLTV paper at CPU size. Intensities in
# [0, 1] (mean 0, std 255) as in the paper, so the image graph's sigma_b = 13/255 is in these
# units. Trained from random weights.
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[0.0, 0.0, 0.0],
    std=[255.0, 255.0, 255.0],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    # two down-samplings: sides divisible by 4
    size_divisor=4,
    test_cfg=dict(size_divisor=4))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='UNet',
        in_channels=3,
        base_channels=8,
        num_stages=3,
        strides=(1, 1, 1),
        enc_num_convs=(2, 2, 2),
        dec_num_convs=(2, 2),
        downsamples=(True, True),
        enc_dilations=(1, 1, 1),
        dec_dilations=(1, 1),
        with_cp=False,
        conv_cfg=None,
        norm_cfg=norm_cfg,
        act_cfg=dict(type='ReLU'),
        upsample_cfg=dict(type='InterpConv'),
        norm_eval=False),
    decode_head=dict(
        type='FCNHead',
        in_channels=8,
        in_index=2,
        channels=8,
        num_convs=0,
        concat_input=False,
        dropout_ratio=0.0,
        num_classes=2,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=None,
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
