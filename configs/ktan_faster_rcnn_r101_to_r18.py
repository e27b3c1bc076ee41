# KTAN on COCO: MMDetection's Faster R-CNN R-101 FPN (model zoo checkpoint) teaches an R-18 FPN
# student trained with the 1x recipe. Both FPNs have 256 channels, so T2S is the identity.
_base_ = ['./_base_/faster-rcnn_r18_fpn_1x_coco.py', './_base_/ktan_runtime.py']

custom_imports = dict(imports=['ktan_det'], allow_failed_imports=False)

model = dict(
    _delete_=True,
    type='KTANDistiller',
    student=_base_.model,
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_1x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
    'faster_rcnn_r101_fpn_1x_coco/faster_rcnn_r101_fpn_1x_coco_20200130-f513f705.pth',
    tap_levels=None,
    t2s=dict(kernel_size=1),
    discriminator=dict(type='PatchDiscriminator', base_channels=64, num_convs=2),
    loss_imitation=dict(type='FeatureImitationLoss', loss_weight=1.0, fg_weight=1.0),
    loss_adv=dict(type='AdversarialLoss', gan_type='lsgan', loss_weight=0.1),
    loss_soft=dict(type='SoftLabelLoss', temperature=2.0, loss_weight=1.0),
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
