# NLTV paper (Jia, Tai, Liu), CamVid: the RSegnet column of Table 3 (57.79 mIoU, RE 2.43): the
# network with the LOCAL TV-regularised softmax (4 geometric neighbours, weight 1; see
# ltv-fcn_unet-s5-d16_1xb3-20k_wbc-300x300.py), trained as the paper trains RSegnet: like the
# base network ("we also initialize the weights of Segnet and RSegnet from the VGG model"),
# not fine-tuned from it. The plain U-Net stands in for SegNet
# (unet-s5-d16_fcn_1xb4-20k_camvid-360x480.py says why), with that config's recipe, inherited:
# 367 training images, batch 4, SGD momentum 0.9, lr 0.001 fixed, SegNet's median-frequency
# class weights, no augmentation, 20k iterations.
_base_ = ['./unet-s5-d16_fcn_1xb4-20k_camvid-360x480.py']
model = dict(
    decode_head=dict(
        _delete_=True,
        type='NLTVHead',
        base_head={{_base_.model.decode_head}},
        graph_source='grid',
        nltv=dict(graph='grid', lam=3.0, tau=0.03, eps=0.5, train_iters=3)))
