# Teacher: Faster R-CNN R-50 FPN trained from scratch on the synthetic benchmark.
_base_ = ['./_base_/faster-rcnn_fpn_scratch.py', './_base_/synthetic_detection.py']

model = dict(backbone=dict(depth=50))
