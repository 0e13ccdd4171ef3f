# Anchor: mmseg 1.2.2's own LightHamHead (SegNeXt; NMF ham, 1x1 squeeze and align, ReLU after
# the skip sum, gradient through every NMF step) with the Ham-NMF row's width, rank and steps.
_base_ = ['./fcn_r18s3-d8_450iter_synthetic-context-64x64.py']
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='LightHamHead',
        ham_channels=64,
        ham_kwargs=dict(MD_S=1, MD_R=16, train_steps=6, eval_steps=7, inv_t=1, rand_init=True),
        in_channels=[64],
        in_index=[2],
        channels=64,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
