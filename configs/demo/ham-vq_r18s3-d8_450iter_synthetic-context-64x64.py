# HamburgerHead with the VQ ham (d = 64, r = 16: the demo is 8x thinner than HamNet),
# in LightHamHead's form.
_base_ = ['./fcn_r18s3-d8_450iter_synthetic-context-64x64.py']
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    decode_head=dict(
        _delete_=True,
        type='HamburgerHead',
        ham_type='VQ',
        ham_channels=64,
        # inv_t=1, not HamNet's 100: at 100 the soft assignments are one-hot, discs and the key
        # strip fall into different clusters and the ham's output at a disc cannot depend on
        # the key (docs/demo_diagnosis.md: 33.7 -> 89.0 mIoU for VQ)
        ham_kwargs=dict(MD_S=1, MD_R=16, train_steps=6, eval_steps=7, inv_t=1, rand_init=True,
                        grad='bptt'),
        # LightHamHead's form (mmseg, SegNeXt), tested equal to it: 1x1 squeeze and align,
        # ReLU after the skip sum, gradient through every step. HamNet's 3x3 convs and
        # one-step gradient (the class defaults, the paper's recipe) miss the key here:
        # NMF 33.6 -> 70.1, CD 48.6 -> 85.1, VQ 79.1 -> 83.1 mIoU over seeds 0-2
        # (docs/demo_diagnosis.md, 2026-12-06)
        kernel_size=1,
        trailing_relu=True,
        in_channels=64,
        in_index=2,
        channels=64,
        dropout_ratio=0.1,
        num_classes=4,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)))
