# ARNLB (Sun et al.), the authors' ADE20K recipe, as mmseg's
# nonlocal_r101-d8_4xb4-80k_ade20k-512x512.py: dilated ResNetV1c-101 (output stride 8),
# ARNLHead plus the auxiliary FCN head, 150 classes; SGD momentum 0.9, lr 0.01, poly (power
# 0.9, min 1e-4), weight decay 5e-4, SyncBN, batch 16 (4 GPUs x 4 images), 80k iterations,
# 512 x 512 crops; whole-image test.
_base_ = [
    '../_base_/models/arnl_r50-d8.py',
    'mmseg::_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
crop_size = (512, 512)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    pretrained='open-mmlab://resnet101_v1c',
    backbone=dict(depth=101),
    decode_head=dict(num_classes=150),
    auxiliary_head=dict(num_classes=150))
