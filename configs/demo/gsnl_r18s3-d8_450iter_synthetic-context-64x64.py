# Generalised spectral nonlocal head: the SNL demo head's arguments and initialisation
# (snl_r18s3-d8_450iter_synthetic-context-64x64.py, zero_init_local for w1 and w3) with the
# w3 (2A - I) term of gSNL.
_base_ = ['./snl_r18s3-d8_450iter_synthetic-context-64x64.py']
model = dict(decode_head=dict(type='GSNLHead'))
