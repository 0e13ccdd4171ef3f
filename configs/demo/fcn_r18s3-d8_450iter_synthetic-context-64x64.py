# The FCN baseline of the long-range demo: mmseg's FCNHead sees only a neighbourhood.
_base_ = ['../_base_/demo_context.py']
model = dict(decode_head=dict(type='FCNHead', num_convs=2, concat_input=True))
