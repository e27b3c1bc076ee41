# Teacher: Faster R-CNN R-50 FPN trained from scratch on the glyph data set.
_base_ = ['../synthetic/_base_/faster-rcnn_fpn_scratch.py', './_base_/glyph_detection.py']

model = dict(backbone=dict(depth=50), roi_head=dict(bbox_head=dict(num_classes=10)))
