# The baseline of the regions demo: a small full-resolution UNet whose per-pixel softmax
# reads the stripe orientation from a noisy neighbourhood (docs/demo_regions.md).
_base_ = [
    '../_base_/models/unet-s3-d4_fcn_regions.py',
    '../_base_/datasets/synthetic_regions.py',
    '../_base_/schedules/demo_regions.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
randomness = dict(seed=0)
