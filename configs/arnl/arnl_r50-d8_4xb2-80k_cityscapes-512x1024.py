# ARNLB (Sun et al.), the authors' 80k Cityscapes recipe: as
# arnl_r50-d8_4xb2-40k_cityscapes-512x1024.py with mmseg's 80k schedule (lr 0.01, poly,
# weight decay 5e-4, 80k iterations), as mmseg's nonlocal_r50-d8_4xb2-80k_cityscapes-512x1024.
_base_ = [
    '../_base_/models/arnl_r50-d8.py',
    'mmseg::_base_/datasets/cityscapes.py',
    '../_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_80k.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
