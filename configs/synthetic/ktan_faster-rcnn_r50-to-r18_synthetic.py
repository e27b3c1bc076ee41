# KTAN: distil the synthetic-benchmark teacher (Faster R-CNN R-50, 256-channel FPN) into the
# student (R-18, 128-channel FPN). The student, data and schedule are the plain student's config;
# this file states only what KTAN adds. The teacher checkpoint is the one the demo trains; point
# elsewhere with --cfg-options model.teacher_ckpt=PATH.
_base_ = ['./faster-rcnn_r18_fpn_student_synthetic.py', '../_base_/ktan_runtime.py']

model = dict(
    _delete_=True,
    type='KTANDistiller',
    student=_base_.model,
    teacher='{{fileDirname}}/faster-rcnn_r50_fpn_teacher_synthetic.py',
    teacher_ckpt='work_dirs/synthetic_teacher/teacher.pth',
    tap_levels=None,  # every FPN level
    t2s=dict(kernel_size=1, norm_cfg=None, init='pca'),
    discriminator=dict(type='PatchDiscriminator', base_channels=64, num_convs=2, shared=True,
                       input_norm='channel'),
    # Weight 4.5 and no TGN stage (T2S fixed at its PCA map): 0.062 bbox mAP against 0.033 with
    # weight 1 and a 100-iteration TGN stage (2 seeds, docs/benchmarks.md#experiments).
    loss_imitation=dict(type='FeatureImitationLoss', loss_weight=4.5, normalize='channel',
                        fg_weight=1.0),
    loss_adv=dict(type='AdversarialLoss', gan_type='lsgan', loss_weight=0.1),
    loss_soft=dict(type='SoftLabelLoss', temperature=2.0, loss_weight=1.0),
    # The teacher's maps of every training image and flip kept (2,000 inputs, about 1.6 GB):
    # from the second epoch on, its backbone and neck need not run again (same targets).
    train_cfg=dict(tgn_iters=0, adv_start_iter=50, disc_steps=1, soft_rois_per_img=16,
                   cache_teacher_maps=2000))

optim_wrapper = dict(
    _delete_=True,
    constructor='KTANOptimWrapperConstructor',
    type='OptimWrapper',
    student=dict(optimizer=_base_.optim_wrapper.optimizer,
                 paramwise_cfg=_base_.optim_wrapper.paramwise_cfg,
                 clip_grad=_base_.optim_wrapper.clip_grad),
    discriminator=_base_.disc_optim_wrapper)
param_scheduler = dict(
    _delete_=True,
    student=_base_.param_scheduler,
    discriminator=_base_.disc_param_scheduler)
custom_hooks = [dict(type='KTANLossWeightHook', warmup_iters=dict(adv=100)), *_base_.ktan_hooks]
