# Nonlocal stage head: one affinity, two diffusion units.
_base_ = ['../_base_/demo_context.py']
model = dict(
    decode_head=dict(
        type='NSHead',
        reduction=2,
        num_units=2,
        # open context path at init: the zero-initialised gate (mmcv's default) stays
        # shut when trained from scratch (600 iterations, docs/nonlocal.md)
        zero_init_output=False))
