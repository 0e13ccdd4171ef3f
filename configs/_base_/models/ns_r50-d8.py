# NS: nonlocal stage, a shared affinity for stacked units (Tao et al., ECCV 2018), on the
# shared R-50-D8 model (r50-d8.py).
_base_ = ['./r50-d8.py']
model = dict(
    decode_head=dict(
        type='NSHead',
        reduction=2,
        num_units=2,
        use_scale=True,
        mode='embedded_gaussian'))
