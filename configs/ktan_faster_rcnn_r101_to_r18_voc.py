# KTAN on Pascal VOC 07+12. MMDetection's zoo has no R-101 VOC teacher, so there is no default
# teacher checkpoint: train configs/teachers/faster-rcnn_r101_fpn_1x_voc0712.py first, then
#   python tools/train.py configs/ktan_faster_rcnn_r101_to_r18_voc.py \
#       --cfg-options model.teacher_ckpt=work_dirs/faster-rcnn_r101_fpn_1x_voc0712/epoch_4.pth
_base_ = ['./_base_/faster-rcnn_r18_fpn_1x_voc0712.py', './_base_/ktan_runtime.py']

custom_imports = dict(imports=['ktan_det'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='KTANDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/teachers/faster-rcnn_r101_fpn_1x_voc0712.py',
    teacher_ckpt=None,
    # T2S, discriminator and losses: KTANDistiller's defaults (docs/guide.md#config-reference)
    train_cfg=dict(adv_start_iter=500, disc_steps=1))

optim_wrapper = dict(
    _delete_=True,
    constructor='KTANOptimWrapperConstructor',
    type='OptimWrapper',
    student=dict(optimizer=_base_.optim_wrapper.optimizer),
    discriminator=_base_.disc_optim_wrapper)
param_scheduler = dict(
    _delete_=True,
    student=_base_.param_scheduler,
    discriminator=_base_.disc_param_scheduler)
custom_hooks = [dict(type='KTANLossWeightHook', warmup_iters=dict(adv=200)), *_base_.ktan_hooks]
# Keep the best student by val mAP (besides the regular checkpoints).
default_hooks = dict(checkpoint=dict(save_best='pascal_voc/mAP', rule='greater'))
