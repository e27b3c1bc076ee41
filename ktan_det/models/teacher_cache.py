"""The frozen teacher's neck maps, memoised by the exact input image (ktan-det's option for CPU
training, ``train_cfg.cache_teacher_maps``).

The teacher is frozen and in eval mode, so its maps of an image depend on that image alone.
Where a training set is small and its augmentations few (the synthetic benchmark: 1,000 images,
each with or without a flip), the same inputs come back every epoch, and the teacher's backbone
and neck, most of its cost in a KTAN step, need not run again. Entries are keyed by the bytes
of the preprocessed image itself, so an augmentation that changes the input (a random crop, a
resize) is a miss, never a wrong map.
"""
import hashlib
from collections import OrderedDict
from typing import Callable, List, Sequence

import torch
from torch import Tensor


class TeacherMapCache:
    """Per-image teacher neck maps, the least recently used dropped beyond ``max_images``.

    Args:
        max_images: How many images' maps to keep (each level's map of one image, in the
            dtype the teacher computed it in).
    """

    def __init__(self, max_images: int) -> None:
        if max_images < 1:
            raise ValueError(f'train_cfg.cache_teacher_maps={max_images} must be >= 1 '
                             '(images kept), or 0/None for no cache')
        self.max_images = max_images
        self._maps: 'OrderedDict[bytes, List[Tensor]]' = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._maps)

    @staticmethod
    def keys(inputs: Tensor) -> List[bytes]:
        """The key of each preprocessed image of a batch: a digest of its shape, dtype and
        values (the batch copied to the CPU once)."""
        batch = inputs.detach().contiguous().cpu()
        about = str((tuple(batch.shape[1:]), batch.dtype)).encode()
        keys = []
        for image in batch:
            digest = hashlib.blake2b(about, digest_size=16)
            digest.update(image.view(torch.uint8).numpy().tobytes())
            keys.append(digest.digest())
        return keys

    def __call__(self, extract: Callable[[Tensor], Sequence[Tensor]],
                 inputs: Tensor) -> List[Tensor]:
        """The maps ``extract(inputs)`` would give, per level, computing them only for the
        images of the batch not cached yet (as one smaller batch)."""
        keys = self.keys(inputs)
        missing = [i for i, key in enumerate(keys) if key not in self._maps]
        if missing:
            computed = extract(inputs[missing])
            for row, i in enumerate(missing):
                self._maps[keys[i]] = [level[row].clone() for level in computed]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        per_image = [self._maps[key] for key in keys]
        for key in keys:
            self._maps.move_to_end(key)
        while len(self._maps) > self.max_images:
            self._maps.popitem(last=False)
        return [torch.stack([maps[level] for maps in per_image])
                for level in range(len(per_image[0]))]
