# NS in its papers' own formulation: the symmetric relu-dot kernel of one shared embedding
# (Tao et al. eq. 12-13, rows normalised by C_i(X), eq. 9) and the ReLU after each unit's norm
# of the public code (SNL_ICCV2021's ns.py), the output norm opened: the row that the NS row
# is read against.
_base_ = ['./ns_r18s3-d8_450iter_synthetic-context-64x64.py']
model = dict(decode_head=dict(mode='symmetric_relu_dot', output_relu=True))
