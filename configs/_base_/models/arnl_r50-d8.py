# ARNL: non-local block with adaptive regularisation (Sun et al.) on the shared R-50-D8 model
# (r50-d8.py).
_base_ = ['./r50-d8.py']
model = dict(
    decode_head=dict(
        type='ARNLHead', reduction=2, use_scale=False, mode='embedded_gaussian'))
