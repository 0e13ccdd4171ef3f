# NLTV-regularised softmax over the demo's FCN head: the kNN graph is built online from the
# FCN head's last feature map; 3 unrolled PDHG steps in training, until the duality gap
# reaches 1e-5 (at most 1500 steps) in testing.
_base_ = ['./fcn_r18s3-d8_450iter_synthetic-context-64x64.py']
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NLTVHead',
        base_head=dict(
            type='FCNHead',
            in_channels=64,
            in_index=2,
            channels=64,
            num_convs=2,
            concat_input=True,
            dropout_ratio=0.1,
            num_classes=4,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        nltv=dict(k=10, lam=3.0, tau=0.03, eps=0.5, train_iters=3)))
