# HamNet with the NMF ham (Geng et al., ICLR 2021) on the shared R-50-D8 model (r50-d8.py):
# d = 512, r = 64 atoms, K = 6 training steps.
_base_ = ['./r50-d8.py']
model = dict(
    decode_head=dict(
        type='HamburgerHead',
        ham_channels=512,
        ham_type='NMF',
        ham_kwargs=dict(
            MD_S=1,
            MD_R=64,
            train_steps=6,
            # mmseg's LightHamHead choice; the paper evaluates with the training K
            # (configs/hamburger/hamnet_* do)
            eval_steps=7,
            inv_t=1,
            rand_init=True)))
