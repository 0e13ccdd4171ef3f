# Spectral nonlocal head (first-order Chebyshev, symmetric normalisation).
_base_ = ['./fcn_r18s3-d8_450iter_synthetic-context-64x64.py']
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='SNLHead',
        reduction=2,
        affinity='symmetric',
        in_channels=64,
        in_index=2,
        channels=64,
        # open context path at init: the zero-initialised gate (mmcv's default) stays
        # shut when trained from scratch (600 iterations, docs/nonlocal.md)
        zero_init_output=False,
        # start as the NL block (w1, and w3 of gSNL, zero at init): with w1 drawn like w2 the
        # local term w1 Z swamps the global A Z W2 at init and the head reads no key in
        # most seeds (docs/demo_diagnosis.md)
        zero_init_local=True,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
