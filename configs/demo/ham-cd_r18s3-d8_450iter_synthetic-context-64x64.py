# HamburgerHead with the CD ham (d = 64, r = 16: the demo is 8x thinner than HamNet),
# in LightHamHead's form: the VQ demo head (ham-vq_r18s3-d8_450iter_synthetic-context-64x64.py,
# inv_t = 1, not HamNet's 100) with the CD ham.
_base_ = ['./ham-vq_r18s3-d8_450iter_synthetic-context-64x64.py']
model = dict(decode_head=dict(ham_type='CD'))
