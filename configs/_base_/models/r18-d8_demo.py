# The demo model: the first three stages of a thin ResNetV1c-18 (16 base channels, so
# stage 3 has 64; output stride 8, stage 3 dilated by 2; no pretrained weights) and the
# decode-head fields every demo head shares (stage 3 in, 64 channels, dropout 0.1, 4 classes).
# Thin and short so that `make demo` trains every head over 3 seeds in under 10 minutes on 2
# CPU cores (stage 4 would cost 2.5x the time). Not a model on its own: fcn_r18-d8_demo.py
# and the demo configs set the decode head's type and arguments.
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(64, 64))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='ResNetV1c',
        depth=18,
        stem_channels=16,
        base_channels=16,
        num_stages=3,
        out_indices=(0, 1, 2),
        dilations=(1, 1, 2),
        strides=(1, 2, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        in_channels=64,
        in_index=2,
        channels=64,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
