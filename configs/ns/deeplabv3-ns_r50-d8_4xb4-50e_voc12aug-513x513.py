# SNL paper, appendix C (Table 10, "+NS": 72.2 mIoU on VOC 2012 val): the DeepLab baseline
# (../snl/deeplabv3_r50-d8_4xb4-50e_voc12aug-513x513.py, its schedule and data) with one
# nonlocal stage (Tao et al.) of a single diffusion unit, Z + W (A - I) g(Z) (SNL with
# W1 = -W2), inserted right before the last residual block of res4; C' = C / 2. NonLocalStage
# needs a row-normalised affinity, so it uses the embedded Gaussian (softmax) kernel where the
# paper names the dot product.
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
                    type='NonLocalStage',
                    reduction=2,
                    num_units=1,
                    mode='embedded_gaussian',
                    norm_cfg=norm_cfg))
        ]))
