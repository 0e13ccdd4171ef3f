# Non-local head (NL, embedded Gaussian) on the demo backbone.
_base_ = ['../_base_/demo_context.py']
model = dict(
    decode_head=dict(
        type='NonLocalHead',
        reduction=2,
        use_scale=True,
        mode='embedded_gaussian',
        # open context path at init: the zero-initialised gate (mmcv's default) stays
        # shut when trained from scratch (600 iterations, docs/nonlocal.md)
        zero_init_output=False))
