# NLTV-regularised softmax (Jia, Tai, Liu) over an FCN head on the shared R-50-D8 model
# (r50-d8.py): the base head is mmseg's FCNHead (two 3x3 convs, input concatenated) with the
# shared decode-head fields.
_base_ = ['./r50-d8.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NLTVHead',
        base_head=dict(
            _base_.model.decode_head, type='FCNHead', num_convs=2, concat_input=True),
        # the paper's solver and graph parameters (eq. 11, 28); the kNN
        # graph is built online from the base head's last feature map
        nltv=dict(
            k=10,
            lam=3.0,
            tau=0.03,
            eps=0.5,
            train_iters=3,
            lambda1=1.0,
            lambda2=0.5,
            sigma_a=40.0,
            sigma_b=13 / 255,
            sigma_g=3.0)))
