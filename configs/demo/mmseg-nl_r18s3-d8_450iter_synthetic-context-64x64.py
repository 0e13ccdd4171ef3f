# Anchor: mmseg 1.2.2's own NLHead (mmcv NonLocal2d, its zero-initialised output gate), the
# head a user would otherwise pick, at the NL row's width and embedding.
_base_ = ['./fcn_r18s3-d8_450iter_synthetic-context-64x64.py']
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NLHead',
        reduction=2,
        use_scale=True,
        mode='embedded_gaussian',
        in_channels=64,
        in_index=2,
        channels=64,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
