# The FCN baseline of the long-range demo: mmseg's FCNHead sees only a neighbourhood.
_base_ = [
    '../_base_/models/fcn_r18-d8_demo.py',
    '../_base_/datasets/synthetic_context.py',
    '../_base_/schedules/demo_450iter.py',
    '../_base_/default_runtime.py',
]
custom_imports = dict(imports=['nlseg'], allow_failed_imports=False)
default_scope = 'mmseg'
