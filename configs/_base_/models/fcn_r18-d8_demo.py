# The demo model (r18-d8_demo.py) with mmseg's FCNHead (two 3x3 convs, input concatenated).
_base_ = ['./r18-d8_demo.py']
model = dict(decode_head=dict(type='FCNHead', num_convs=2, concat_input=True))
