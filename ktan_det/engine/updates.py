"""Optimizer updates that every rank takes or skips together."""
import torch
import torch.distributed as dist
from mmengine.optim import OptimWrapper
from torch import Tensor


def update_if_finite(wrapper: OptimWrapper, loss: Tensor) -> bool:
    """Update with ``loss`` if it is finite on every rank; otherwise skip the step on all ranks
    together and return ``False``. A skipped step still runs the backward (of zeros), so that
    DDP's gradient reduction completes everywhere, and then drops the gradients."""
    finite = torch.isfinite(loss.detach()).to(torch.float32)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    if finite.item():
        wrapper.update_params(loss)
        return True
    wrapper.backward(torch.nan_to_num(loss, nan=0.0, posinf=0.0, neginf=0.0) * 0)
    wrapper.zero_grad()
    return False
