# gSNL as its authors' published forward (SNL_ICCV2021): as snl-authors, with the w3 (2A - I)
# term: the row that the gSNL row (our recommended init) is read against.
_base_ = ['./gsnl_r18s3-d8_450iter_synthetic-context-64x64.py']
model = dict(decode_head=dict(output_relu=True, zero_init_local=False))
