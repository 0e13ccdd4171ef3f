# SNL paper, appendix C (Table 10, "+NL": 72.2 mIoU on VOC 2012 val): the DeepLab baseline
# (../snl/deeplabv3_r50-d8_4xb4-50e_voc12aug-513x513.py, its schedule and data) with one
# non-local block (Wang et al.) inserted right before the last residual block of res4, with
# the settings of the SNL block it is compared to: the dot-product kernel (the paper uses
# "Dot Product" for every block), C' = C / 2.
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
                    type='NonLocalBlock',
                    reduction=2,
                    mode='dot_product',
                    norm_cfg=norm_cfg))
        ]))
