# The NLTV paper's network (Jia, Tai, Liu): the plain U-Net of unet-s5-d16_fcn_plain.py with
# its softmax replaced by the NLTV-regularised softmax (eq. 25/34, solved by the PDHG of eq. 28
# / Alg. 1: tau 0.03, lambda 3, eps 0.5; training unrolls 3 steps, testing iterates to the
# paper's stopping rule) over a graph built, as in the paper, from the image itself: each
# pixel is linked to its d nearest neighbours with the weights of eq. 11 from positions and
# colours (lambda1 1, lambda2 0.5, sigma_a 40, sigma_b 13/255, sigma_g 3). WithImageLevel
# appends the preprocessed image as the backbone's last level and NLTVHead reads it there
# (image_index=-1) and un-normalises it to colours in [0, 1]. d (`k`) is set by each config.
_base_ = ['./unet-s5-d16_fcn_plain.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='WithImageLevel',
        backbone={{_base_.model.backbone}}),
    decode_head=dict(
        _delete_=True,
        type='NLTVHead',
        base_head={{_base_.model.decode_head}},
        graph_source='image',
        image_index=-1,
        # the data preprocessor's mean / std: the head un-normalises the image level
        image_mean=[0.0, 0.0, 0.0],
        image_std=[255.0, 255.0, 255.0],
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
            sigma_g=3.0,
            # raw colours: sigma_b is in the units of the [0, 1] intensities
            feature_norm=None)))
