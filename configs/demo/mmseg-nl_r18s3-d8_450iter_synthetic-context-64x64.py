# Anchor: mmseg 1.2.2's own NLHead (mmcv NonLocal2d, its zero-initialised output gate), the
# head a user would otherwise pick, at the NL row's width and embedding.
_base_ = ['../_base_/demo_context.py']
model = dict(
    decode_head=dict(
        type='NLHead', reduction=2, use_scale=True, mode='embedded_gaussian'))
