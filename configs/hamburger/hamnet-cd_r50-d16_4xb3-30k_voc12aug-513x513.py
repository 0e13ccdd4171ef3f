# HamNet's ablation setting with the CD ham (Geng et al., ICLR 2021, Table 1: one-step
# gradient vs back-propagation through all steps): hamnet_r50-d16_4xb3-30k_voc12aug-513x513.py
# (its schedule, data and head) with ham_type='CD' and the authors' inverse temperature 100
# (T = 0.01) of the CD ham; K = 6 for training and evaluation.
_base_ = './hamnet_r50-d16_4xb3-30k_voc12aug-513x513.py'
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(decode_head=dict(ham_type='CD', ham_kwargs=dict(inv_t=100)))
