"""Random image augmentation on raw uint8 arrays, before a backbone's own preprocessing.

Used where two different looks at the same image are the point (contrastive pretraining's two
views, a noisy student). Augmented inputs change every epoch, so a phase that trains on them cannot
use the feature cache; callers say so.

    views = augment_images(images, strength="strong", generator=torch.Generator().manual_seed(0))
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torchvision.transforms import v2

__all__ = ["augment_images", "Strength"]

Strength = Literal["light", "strong"]


def _pipeline(strength: Strength, size: int) -> v2.Compose:
    # No flips: digits and text-like images change meaning when mirrored.
    if strength == "light":  # a noisy student: small shifts and rescales, the label stays obvious
        return v2.Compose([v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1))])
    # SimCLR's recipe, scaled to small images: crops, colour changes, blur.
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.3, 1.0), antialias=True),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 1.5))], p=0.5),
    ])


def augment_images(images: list, strength: Strength = "light", generator: torch.Generator | None = None) -> list:
    """A randomly augmented copy of each HxW[x3] uint8 image, same size, as HxWx3 uint8 arrays."""
    out = []
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) if generator is not None else None
    state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)  # torchvision draws from the global generator: scope it to this call
    try:
        for image in images:
            array = np.asarray(image)
            if array.ndim == 2:
                array = np.repeat(array[..., None], 3, axis=-1)
            tensor = torch.from_numpy(np.array(array)).permute(2, 0, 1)  # 3 x H x W uint8
            augmented = _pipeline(strength, min(tensor.shape[-2:]))(tensor)
            out.append(augmented.permute(1, 2, 0).contiguous().numpy())
    finally:
        if seed is not None:
            torch.random.set_rng_state(state)
    return out
