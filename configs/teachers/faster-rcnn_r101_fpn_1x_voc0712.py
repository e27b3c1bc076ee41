# Teacher for Pascal VOC 07+12 (MMDetection's model zoo has none): train it with
#   python tools/train.py configs/teachers/faster-rcnn_r101_fpn_1x_voc0712.py
# and pass its checkpoint to the KTAN VOC config as model.teacher_ckpt.
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50_fpn_1x_voc0712.py'

model = dict(
    backbone=dict(
        depth=101, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet101')))
