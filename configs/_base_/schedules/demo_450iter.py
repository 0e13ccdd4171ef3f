# The demo schedule: 450 iterations of SGD with poly decay, validation and the checkpoint at
# the end (mmseg's iteration-based practice, shortened so that `make demo` trains every head
# over 3 seeds in under 10 minutes on 2 cores; `make demo FULL=1` trains longer).
# lr 0.04 (0.02 in the 2026-12-02 demo): at 0.02 with batches of 4, SNL / gSNL / Ham-VQ / ARNL
# reached 29.9 / 29.6 / 64.2 / 72.6 seed-mean mIoU, at 0.04 47.2 / 33.3 / 78.1 / 79.1
# (docs/demo_diagnosis.md)
optimizer = dict(type='SGD', lr=0.04, momentum=0.9, weight_decay=0.0005)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer, clip_grad=None)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=450, by_epoch=False)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=450, val_interval=450)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=450),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
