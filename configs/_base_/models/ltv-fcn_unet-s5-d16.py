# The NLTV paper's middle column (Jia, Tai, Liu, Tables 1-3: RUnet / RSegnet, their ref. [10]):
# the plain U-Net of unet-s5-d16_fcn_plain.py with its softmax replaced by the LOCAL
# TV-regularised softmax: the same solver as NLTV (eq. 25/34, PDHG of eq. 28 / Alg. 1: tau
# 0.03, lambda 3, eps 0.5; training unrolls 3 steps, testing iterates to the paper's stopping
# rule) on the 4-neighbour pixel grid with unit weights (sec. 3.5, Fig. 1: "each pixel has 4
# neighbors and the weights of edges are set to 1"). No image level is needed: the grid
# depends only on the size of the logits.
_base_ = ['./unet-s5-d16_fcn_plain.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NLTVHead',
        base_head={{_base_.model.decode_head}},
        graph_source='grid',
        nltv=dict(graph='grid', lam=3.0, tau=0.03, eps=0.5, train_iters=3)))
