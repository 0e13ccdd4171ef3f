# The data set, schedule and runtime of the generated matrix's VOC 2012 aug configs
# (tools/misc/generate_configs.py: a model base and this file make a config): mmseg's data set
# config (512 x 512 crops, 4 GPUs x 4 images) and 40k schedule.
_base_ = [
    'mmseg::_base_/datasets/pascal_voc12_aug.py',
    '../default_runtime.py',
    'mmseg::_base_/schedules/schedule_40k.py',
]
crop_size = (512, 512)
