# HamNet (Geng et al., "Is Attention Better Than Matrix Decomposition?", ICLR 2021, appendix
# E.3) as its authors build it: a dilated ResNetV1c (output stride 8), a 3x3 conv + BN + ReLU
# squeezing 2048 -> 512 channels, the Hamburger with the NMF ham (d = 512, r = 64 atoms,
# K = 6 iterations, the one-step gradient, bases drawn at random every forward), a 3x3 conv +
# BN + ReLU aligning 512 -> 256 channels, dropout 0.1 and the 1x1 classifier. No auxiliary
# head. The paper recommends the same K for training and evaluation (sec. 3.1, Fig. 4):
# eval_steps = train_steps = 6 here (mmseg's LightHamHead and nlseg's generated ham-* configs
# evaluate with 7). Crops of 513 pair with align_corners=True, as in mmseg's 769 x 769
# configs: the 65 x 65 stride-8 map then lines up with the crop's corner pixels.
_base_ = ['./ham-nmf_r50-d8.py']
model = dict(
    decode_head=dict(
        channels=256, ham_kwargs=dict(eval_steps=6), num_classes=21, align_corners=True),
    auxiliary_head=None)
