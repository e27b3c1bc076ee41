# RetinaNet + FPN adapted to train from scratch on the small synthetic images, as
# faster-rcnn_fpn_scratch.py adapts Faster R-CNN: batch norm in the backbone and the FPN, all of
# it trained, and anchors from 16 pixels at P3 (MMDetection's start at 32) for 7-90 px objects.
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(frozen_stages=-1, norm_cfg=norm_cfg, norm_eval=False, init_cfg=None),
    neck=dict(norm_cfg=norm_cfg),
    bbox_head=dict(num_classes=8, anchor_generator=dict(octave_base_scale=2)))
