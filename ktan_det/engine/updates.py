"""Optimizer updates that every rank takes or skips together, micro-batch by micro-batch."""
from typing import Dict

import torch
import torch.distributed as dist
from mmengine.optim import OptimWrapper
from torch import Tensor


class FiniteUpdates:
    """Update with a loss only if it is finite on every rank; otherwise skip its contribution
    on all ranks together.

    A skipped micro-batch still runs a backward (of its loss times 0), so that DDP's gradient
    reduction completes everywhere and the wrapper counts it, and leaves the gradients as they
    were before it. Under gradient accumulation
    (``accumulative_counts``) the other micro-batches of the window keep their gradients: the
    window's step uses them (scaled as MMEngine scales every micro-batch, by the window's
    length), and is skipped only when no micro-batch of the window was finite.
    """

    def __init__(self) -> None:
        # Per wrapper: whether a finite micro-batch has contributed to the current window.
        self._contributed: Dict[int, bool] = {}

    def __call__(self, wrapper: OptimWrapper, loss: Tensor) -> bool:
        """Update ``wrapper`` with ``loss``; ``False`` if its contribution was skipped."""
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(finite, op=dist.ReduceOp.MIN)
        key = id(wrapper)
        if finite.item():
            self._contributed[key] = True
            wrapper.update_params(loss)
            if wrapper.should_update():  # the window just stepped
                self._contributed[key] = False
            return True
        contributed = self._contributed.get(key, False)
        # The backward of a non-finite loss times 0 still leaves NaN gradients: keep the
        # window's gradients aside and put them back after it.
        params = [p for group in wrapper.optimizer.param_groups for p in group['params']]
        kept = [p.grad.clone() if contributed and p.grad is not None else None for p in params]
        wrapper.backward(torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0) * 0)
        for param, grad in zip(params, kept):
            param.grad = grad
        if wrapper.should_update():
            if contributed:
                wrapper.step()
            wrapper.zero_grad()
            self._contributed[key] = False
        return False
