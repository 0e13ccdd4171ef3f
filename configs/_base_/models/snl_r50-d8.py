# SNL: spectral nonlocal block, first order (Zhu et al., ICCV 2021), on the shared R-50-D8
# model (r50-d8.py).
_base_ = ['./r50-d8.py']
model = dict(decode_head=dict(type='SNLHead', reduction=2, affinity='symmetric'))
