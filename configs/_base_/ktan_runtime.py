# What every KTAN config adds besides its model: the discriminator's optimizer and LR schedule,
# the wrapper that lets the distiller train its parts with separate optimizers under DDP, and
# ktan-det's hooks (docs/guide.md#hooks). Defaults are ours (the paper gives none).
disc_optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-4, betas=(0.5, 0.999)))
disc_param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False)]

# Each trainable part gets its own DistributedDataParallel, and the runner calls the
# distiller's train_step (MMEngine's default wrapper would not).
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel', broadcast_buffers=False,
                         find_unused_parameters=False)

ktan_hooks = [
    dict(type='TeacherGuardHook'),
    dict(type='DistillationMonitorHook'),
    dict(type='RandomStateHook'),
    dict(type='StudentExportHook'),
]
