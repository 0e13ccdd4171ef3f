# SNL as its authors' published forward (SNL_ICCV2021): relu-dot kernel symmetrised,
# D^-1/2 A D^-1/2, BN then ReLU in the unit (output_relu), the output norm opened as they
# open it (weight 1, bias 0), w1 drawn like w2 (no zero_init_local): the row that the SNL row
# (our recommended init) is read against.
_base_ = ['./snl_r18s3-d8_450iter_synthetic-context-64x64.py']
model = dict(decode_head=dict(output_relu=True, zero_init_local=False))
