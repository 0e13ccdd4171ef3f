# SNL paper, appendix C (Table 10, "+gSNL": 72.7 mIoU on VOC 2012 val): the DeepLab baseline
# (../snl/deeplabv3_r50-d8_4xb4-50e_voc12aug-513x513.py, its schedule and data) with one
# generalised spectral nonlocal block (full order under the stable hypothesis, eq. 11;
# C' = C / 2) inserted right before the last residual block of res4.
_base_ = '../snl/deeplabv3_r50-d8_4xb4-50e_voc12aug-513x513.py'
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
                    type='SpectralNonLocalBlock',
                    reduction=2,
                    generalized=True,
                    norm_cfg=norm_cfg))
        ]))
