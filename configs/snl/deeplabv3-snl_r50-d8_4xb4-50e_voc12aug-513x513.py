# SNL paper, appendix C (Table 10, "+SNL": 72.6 mIoU on VOC 2012 val): the DeepLab baseline
# (deeplabv3_r50-d8_4xb4-50e_voc12aug-513x513.py, its schedule and data) with one spectral
# nonlocal block (first order, eq. 9; C' = C / 2; the symmetric normalised relu dot-product
# affinity, the paper's "Dot Product" kernel) inserted right before the last residual block of
# res4 (stage 2 of the ResNet, block -1). The inserted block keeps the pretrained keys of the
# ResNet unchanged; its output norm starts at zero, so it starts as the identity.
_base_ = './deeplabv3_r50-d8_4xb4-50e_voc12aug-513x513.py'
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(
        type='ResNetV1cWithInserts',
        inserts=[
            dict(
                stage=2,
                before=-1,
                block=dict(
                    type='SpectralNonLocalBlock', reduction=2, norm_cfg=norm_cfg))
        ]))
