# HamburgerHead with the VQ ham (d = 64, r = 16: the demo is 8x thinner than HamNet),
# in LightHamHead's form: the NMF demo head (ham-nmf_r18s3-d8_450iter_synthetic-context-64x64.py)
# with the VQ ham.
_base_ = ['./ham-nmf_r18s3-d8_450iter_synthetic-context-64x64.py']
model = dict(
    decode_head=dict(
        ham_type='VQ',
        # inv_t=1, not HamNet's 100: at 100 the soft assignments are one-hot, discs and the key
        # strip fall into different clusters and the ham's output at a disc cannot depend on
        # the key (docs/demo_diagnosis.md: 33.7 -> 89.0 mIoU for VQ)
        ham_kwargs=dict(inv_t=1)))
