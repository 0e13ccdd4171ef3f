# ARNLB (Sun et al.), the authors' Cityscapes recipe on ResNetV1c-101 (output stride 8), as
# mmseg's nonlocal_r101-d8_4xb2-80k_cityscapes-512x1024.py.
_base_ = './arnl_r50-d8_4xb2-80k_cityscapes-512x1024.py'
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
model = dict(pretrained='open-mmlab://resnet101_v1c', backbone=dict(depth=101))
