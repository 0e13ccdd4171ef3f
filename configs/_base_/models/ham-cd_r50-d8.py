# HamNet with the CD ham (Geng et al., ICLR 2021): ham-nmf_r50-d8.py with the CD ham and its
# softmax temperature inv_t = 100.
_base_ = ['./ham-nmf_r50-d8.py']
model = dict(decode_head=dict(ham_type='CD', ham_kwargs=dict(inv_t=100)))
