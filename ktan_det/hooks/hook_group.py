"""A hook made of hooks: the name older configs use keeps giving what its parts give."""
from typing import Sequence

from mmengine.hooks import Hook


class HookGroup(Hook):
    """Calls each of ``hooks`` in order at every point of MMEngine's runner.

    Each part keeps one job; a group is what a single config entry installs.

    Args:
        hooks: The parts.
    """

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = list(hooks)

    def __repr__(self) -> str:
        return f'{type(self).__name__}({", ".join(type(h).__name__ for h in self.hooks)})'


def _forward_to_parts(stage: str):
    def forward(self, runner, *args, **kwargs) -> None:
        for hook in self.hooks:
            getattr(hook, stage)(runner, *args, **kwargs)
    forward.__name__ = stage
    forward.__doc__ = f'``{stage}`` of each part, in order.'
    return forward


for _stage in Hook.stages:
    setattr(HookGroup, _stage, _forward_to_parts(_stage))
