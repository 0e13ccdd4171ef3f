# Spectral nonlocal head (first-order Chebyshev, symmetric normalisation).
_base_ = ['../_base_/demo_context.py']
model = dict(
    decode_head=dict(
        type='SNLHead',
        reduction=2,
        affinity='symmetric',
        # open context path at init: the zero-initialised gate (mmcv's default) stays
        # shut when trained from scratch (600 iterations, docs/nonlocal.md)
        zero_init_output=False,
        # start as the NL block (w1, and w3 of gSNL, zero at init): with w1 drawn like w2 the
        # local term w1 Z swamps the global A Z W2 at init and the head reads no key in
        # most seeds (docs/demo_diagnosis.md)
        zero_init_local=True))
