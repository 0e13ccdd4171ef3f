# Anchor: mmseg 1.2.2's own LightHamHead (SegNeXt; NMF ham, 1x1 squeeze and align, ReLU after
# the skip sum, gradient through every NMF step) with the Ham-NMF row's width, rank and steps.
_base_ = ['../_base_/demo_context.py']
model = dict(
    decode_head=dict(
        type='LightHamHead',
        ham_channels=64,
        ham_kwargs=dict(MD_S=1, MD_R=16, train_steps=6, eval_steps=7, inv_t=1, rand_init=True),
        # LightHamHead takes a list of levels
        in_channels=[64],
        in_index=[2]))
