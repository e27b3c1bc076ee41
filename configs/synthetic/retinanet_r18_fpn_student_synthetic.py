# Student of the single-stage pair: RetinaNet R-18 with a 128-channel FPN and head, trained from
# scratch on the synthetic benchmark, on the Faster R-CNN students' schedule.
_base_ = ['./_base_/retinanet_fpn_scratch.py', './_base_/synthetic_detection.py']

model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128))
max_iters = 4500
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=max_iters, eta_min_ratio=0.01)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
