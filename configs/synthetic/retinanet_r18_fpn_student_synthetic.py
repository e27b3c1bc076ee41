# Student of the single-stage pair: RetinaNet R-18 with a 128-channel FPN and head, trained from
# scratch on the synthetic benchmark, on the Faster R-CNN students' schedule.
_base_ = ['./_base_/retinanet_fpn_scratch.py', './_base_/student_schedule.py']

model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(in_channels=128, feat_channels=128))
