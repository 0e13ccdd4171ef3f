# WBC Dataset 2 as the NLTV paper trains on it (sec. 4.1): the seeded 60 train / 40 test split
# of wbc.py, the clean 300 x 300 images with no augmentation (the paper names none and notes
# that perturbed colours would corrupt its image graph), batch 3 (its NL-U-Net batch).
# Evaluation: mIoU, pixel accuracy (aAcc) and the paper's RE score of isolated regions.
_base_ = ['./wbc.py']
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs')
]
train_dataloader = dict(batch_size=3, dataset=dict(pipeline=train_pipeline))
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='REScoreMetric')
]
test_evaluator = val_evaluator
