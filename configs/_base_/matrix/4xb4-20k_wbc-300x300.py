# The data set, schedule and runtime of the generated matrix's WBC configs
# (tools/misc/generate_configs.py: a model base and this file make a config): 300 x 300
# crops, 4 GPUs x 4 images, mmseg's 20k schedule.
_base_ = [
    '../datasets/wbc.py', '../default_runtime.py', 'mmseg::_base_/schedules/schedule_20k.py'
]
crop_size = (300, 300)
