# Non-local head (NL, embedded Gaussian) on the demo backbone.
_base_ = ['./fcn_r18s3-d8_450iter_synthetic-context-64x64.py']
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NonLocalHead',
        reduction=2,
        use_scale=True,
        mode='embedded_gaussian',
        in_channels=64,
        in_index=2,
        channels=64,
        # open context path at init: the zero-initialised gate (mmcv's default) stays
        # shut when trained from scratch (600 iterations, docs/nonlocal.md)
        zero_init_output=False,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
