"""Model wrappers (DDP and MMEngine's): what is inside them, and checkpoints without them."""
import torch.nn as nn
from mmengine.model import is_model_wrapper


def unwrap(module: nn.Module) -> nn.Module:
    """``module`` without its (DDP) model wrapper, if it has one (MMEngine has no such helper:
    its runner reads ``model.module`` by hand)."""
    return module.module if is_model_wrapper(module) else module


def drop_wrapper_prefixes(module: nn.Module, state_dict: dict, prefix: str,
                          local_metadata: dict) -> None:
    """State-dict hook: no ``.module`` of the DDP wrappers that MMSeparateDistributedDataParallel
    puts around a model's trainable children (MMEngine's runner saves ``model.state_dict()``),
    so checkpoints load the same with or without distribution."""
    for name, child in module._modules.items():
        wrapped = f'{prefix}{name}.module.'
        if is_model_wrapper(child):
            for key in [k for k in state_dict if k.startswith(wrapped)]:
                state_dict[f'{prefix}{name}.{key[len(wrapped):]}'] = state_dict.pop(key)
