# KTAN for a single-stage detector on COCO: MMDetection's RetinaNet R-101 FPN (model zoo
# checkpoint) teaches RetinaNet R-18 FPN. Soft labels compare the sigmoid class scores anchor by
# anchor (both heads use MMDetection's default anchors).
_base_ = ['mmdet::retinanet/retinanet_r18_fpn_1x_coco.py', './_base_/ktan_runtime.py']

custom_imports = dict(imports=['ktan_det'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='KTANDistiller',
    student=_base_.model,
    teacher='mmdet::retinanet/retinanet_r101_fpn_1x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
    'retinanet_r101_fpn_1x_coco/retinanet_r101_fpn_1x_coco_20200130-7a93545f.pth',
    # T2S, discriminator and losses: KTANDistiller's defaults (docs/guide.md#config-reference)
    train_cfg=dict(adv_start_iter=500, disc_steps=1))

optim_wrapper = dict(
    _delete_=True,
    constructor='KTANOptimWrapperConstructor',
    type='OptimWrapper',
    student=dict(optimizer=_base_.optim_wrapper.optimizer),  # MMDetection's recipe, unclipped
    discriminator=_base_.disc_optim_wrapper)
param_scheduler = dict(
    _delete_=True,
    student=_base_.param_scheduler,
    discriminator=_base_.disc_param_scheduler)
custom_hooks = [dict(type='KTANLossWeightHook', warmup_iters=dict(adv=200)), *_base_.ktan_hooks]
# Keep the best student by val mAP (besides the regular checkpoints).
default_hooks = dict(checkpoint=dict(save_best='coco/bbox_mAP', rule='greater'))
