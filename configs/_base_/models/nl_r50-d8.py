# NL: non-local head (Wang et al., CVPR 2018) on the shared R-50-D8 model (r50-d8.py).
_base_ = ['./r50-d8.py']
model = dict(
    decode_head=dict(
        type='NonLocalHead', reduction=2, use_scale=True, mode='embedded_gaussian'))
