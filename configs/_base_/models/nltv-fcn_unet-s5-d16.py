# NLTV-regularised softmax (Jia, Tai, Liu) over the FCN head of a UNet (s5-d16), in the shape
# of mmseg's _base_/models/fcn_unet_s5-d16.py: the paper-faithful NLTV setting. As
# nltv-fcn_r50-d8.py (the same NLTV parameters, data preprocessor and SyncBN) with mmseg's
# UNet in place of the ResNet and its heads on the UNet's levels.
_base_ = ['./nltv-fcn_r50-d8.py']
norm_cfg = _base_.norm_cfg
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
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
        base_head=dict(
            in_channels=64,
            in_index=4,
            channels=64,
            num_convs=1,
            concat_input=False,
            num_classes=2)),
    auxiliary_head=dict(in_channels=128, in_index=3, channels=64, num_classes=2))
