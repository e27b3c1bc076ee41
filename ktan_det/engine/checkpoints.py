"""When the runner saves a checkpoint, for hooks that must act on every rank just before."""
from mmengine.hooks import CheckpointHook


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
