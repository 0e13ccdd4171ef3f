# NLTV-regularised softmax over the demo's FCN head: the kNN graph is built online from the
# FCN head's last feature map; 3 unrolled PDHG steps in training, until the duality gap
# reaches 1e-5 (at most 1500 steps) in testing.
_base_ = ['./fcn_r18s3-d8_450iter_synthetic-context-64x64.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NLTVHead',
        base_head={{_base_.model.decode_head}},
        nltv=dict(k=10, lam=3.0, tau=0.03, eps=0.5, train_iters=3)))
