"""What ktan-det's hooks ask of the runner: its KTAN distiller, and whether a checkpoint is due."""
from mmengine.hooks import CheckpointHook

from ..models.distiller import unwrap


def ktan_model(runner):
    """The KTANDistiller inside ``runner.model``, with a clear error if it is something else."""
    model = unwrap(runner.model)
    if not hasattr(model, 'loss_scales'):
        raise TypeError(f'this hook needs a KTANDistiller model, got {type(model).__name__}')
    return model


def checkpoint_due(runner, by_epoch: bool) -> bool:
    """Whether the runner's CheckpointHook saves a regular checkpoint at the end of this
    training iteration (``by_epoch=False``) or epoch (``by_epoch=True``)."""
    hook = next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
    if hook is None or hook.by_epoch != by_epoch:
        return False
    if by_epoch:
        return hook.every_n_epochs(runner, hook.interval, hook.save_begin) or (
            hook.save_last and hook.is_last_train_epoch(runner))
    return hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
        hook.save_last and hook.is_last_train_iter(runner))
