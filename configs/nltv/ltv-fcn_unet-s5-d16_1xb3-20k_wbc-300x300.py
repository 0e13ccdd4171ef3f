# NLTV paper (Jia, Tai, Liu), WBC: the RUnet column of Table 1 (90.15 mIoU, 97.13 accuracy,
# RE 1.30): the U-Net with its softmax replaced by the LOCAL TV-regularised softmax of the
# paper's ref. [10]: the NLTV solver (eq. 25/34, PDHG of eq. 28 / Alg. 1: tau 0.03, lambda 3,
# eps 0.5; 3 unrolled steps in training, the paper's stopping rule at test) on the
# 4-neighbour pixel grid with unit weights (sec. 3.5, Fig. 1; no image level needed). Trained
# as the paper trains it, "the weights of Unet, RUnet [...] are randomly initialized": with
# the U-Net's own recipe, inherited here (unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py: 60 train /
# 40 test images, SGD momentum 0.9, lr 1e-4 fixed, 20k iterations, batch 3), not fine-tuned
# from it. To fine-tune it from stage 1 instead, as the NLTV row is, add the stage-1
# checkpoint as nltv-fcn_unet-s5-d16_1xb3-10k_wbc-300x300.py does (Pretrained init_cfg of the
# backbone and of decode_head.base_head).
_base_ = ['./unet-s5-d16_fcn_1xb3-20k_wbc-300x300.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NLTVHead',
        base_head={{_base_.model.decode_head}},
        graph_source='grid',
        nltv=dict(graph='grid', lam=3.0, tau=0.03, eps=0.5, train_iters=3)))
