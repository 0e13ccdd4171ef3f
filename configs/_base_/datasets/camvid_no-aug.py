# CamVid (SegNet's 11-class 360 x 480 copy) as SegNet and the NLTV paper train on it (sec.
# 4.2): the 367 training images with no augmentation; the paper tests on the 233 test images
# (tools/test.py uses the test split, validation during training the 101 val images).
# Evaluation: mIoU, pixel accuracy (aAcc) and the paper's RE score of isolated regions.
_base_ = ['./camvid.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='REScoreMetric')
]
test_evaluator = val_evaluator
