# Teacher of the single-stage pair: RetinaNet R-50 FPN trained from scratch on the synthetic
# benchmark, on the Faster R-CNN teacher's schedule.
_base_ = ['./_base_/retinanet_fpn_scratch.py', './_base_/synthetic_detection.py']

model = dict(backbone=dict(depth=50))
