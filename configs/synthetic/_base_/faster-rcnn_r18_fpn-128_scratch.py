# The student: Faster R-CNN R-18 with a 128-channel FPN (a realistic light student, narrower than
# the teacher's 256 channels), from scratch. Its RoI features come from ktan-det's
# GatherRoIExtractor: mmcv's RoIAlign computed as one vectorised gather, the same features,
# faster on a CPU (docs/benchmarks.md#the-regime-teacher-and-plain-student).
_base_ = './faster-rcnn_fpn_scratch.py'

model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(type='GatherRoIExtractor', out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256)))
