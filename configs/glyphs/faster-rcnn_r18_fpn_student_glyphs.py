# Student: Faster R-CNN R-18 with a 128-channel FPN trained from scratch on the glyph data set,
# on the synthetic benchmark's student schedule.
_base_ = ['../synthetic/_base_/faster-rcnn_r18_fpn-128_scratch.py', './_base_/glyph_detection.py']

model = dict(roi_head=dict(bbox_head=dict(num_classes=10)))
max_iters = 4500
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=max_iters, eta_min_ratio=0.01)
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
