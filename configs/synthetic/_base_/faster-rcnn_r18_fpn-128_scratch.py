# The student: Faster R-CNN R-18 with a 128-channel FPN (a realistic light student, narrower than
# the teacher's 256 channels), from scratch.
_base_ = './faster-rcnn_fpn_scratch.py'

model = dict(
    backbone=dict(depth=18),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    rpn_head=dict(in_channels=128, feat_channels=128),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=128),
        bbox_head=dict(in_channels=128, fc_out_channels=256)))
