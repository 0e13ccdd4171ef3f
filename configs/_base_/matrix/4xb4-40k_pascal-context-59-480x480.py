# The data set, schedule and runtime of the generated matrix's Pascal Context 59 configs
# (tools/misc/generate_configs.py: a model base and this file make a config): mmseg's data set
# config (480 x 480 crops, 4 GPUs x 4 images) and 40k schedule with mmseg's Context 59
# optimiser (lr 0.004, weight decay 1e-4); the configs add the slide test (480 / 320).
_base_ = [
    'mmseg::_base_/datasets/pascal_context_59.py',
    '../default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
crop_size = (480, 480)
optimizer = dict(type='SGD', lr=0.004, momentum=0.9, weight_decay=0.0001)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
