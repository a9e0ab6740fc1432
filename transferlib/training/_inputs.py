"""Moving the images the training functions consume to the device (validated by
:func:`transferlib.validation.check_task` and :func:`~transferlib.validation.check_images`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["image_batch", "images_to_storage"]

#: Image sets up to this many bytes are moved to the accelerator once, as uint8.
DEVICE_BYTES_LIMIT = 2 * 2**30


def images_to_storage(images: Any, device: torch.device) -> torch.Tensor | Any:
    """Put a uint8 image set on ``device`` when it fits, else keep it on the host."""
    if isinstance(images, torch.Tensor):
        return images.to(device) if images.numel() <= DEVICE_BYTES_LIMIT else images
    if isinstance(images, np.ndarray) and images.nbytes <= DEVICE_BYTES_LIMIT:
        tensor = torch.from_numpy(np.ascontiguousarray(images))
        if device.type == "cuda":
            tensor = tensor.pin_memory()
        return tensor.to(device, non_blocking=True)
    return images


def image_batch(storage: Any, index: torch.Tensor | slice, device: torch.device) -> torch.Tensor:
    """One uint8 batch on ``device`` from device storage or a host array/lazy set."""
    if isinstance(storage, torch.Tensor) and storage.device.type != "cpu":
        return storage[index].to(device, non_blocking=True)
    if isinstance(index, torch.Tensor):
        index = index.cpu().numpy()
    batch = storage[index]
    tensor = (
        batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
    )
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)
