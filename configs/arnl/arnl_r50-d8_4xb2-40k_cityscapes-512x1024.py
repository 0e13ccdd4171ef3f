# ARNLB (Sun et al.), the authors' Cityscapes recipe: their repository is mmseg with the NL
# head's block replaced, trained with mmseg's non-local schedule
# (nonlocal_r50-d8_4xb2-40k_cityscapes-512x1024.py): dilated ResNetV1c-50 (output stride 8),
# ARNLHead (reduction 2, no 1/sqrt(C') scale) plus mmseg's auxiliary FCN head on res4 (loss
# weight 0.4); SGD momentum 0.9, lr 0.01, poly (power 0.9, min 1e-4), weight decay 5e-4,
# SyncBN, batch 8 (4 GPUs x 2 images), 40k iterations, 512 x 1024 crops; whole-image test.
_base_ = [
    '../_base_/models/arnl_r50-d8.py',
    'mmseg::_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
