"""Keep MMEngine's training logs to what a step still computes."""
from typing import Callable, Iterable

from mmengine.logging import MessageHub


def forget_stale_scalars(logged: Iterable[str], owned: Callable[[str], bool]) -> None:
    """Drop the message hub's history of the ``owned`` training values this step did not log
    (``logged``): MMEngine would otherwise go on logging their last window average as if they
    were still computed. The hub is all it reads, so this holds after a resume too."""
    logged = set(logged)
    log_scalars = MessageHub.get_current_instance().log_scalars
    for key in [k for k in log_scalars if k.startswith('train/')]:
        name = key[len('train/'):]
        if owned(name) and name not in logged:
            del log_scalars[key]
