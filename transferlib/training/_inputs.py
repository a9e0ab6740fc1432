"""Validation of the data the training functions consume (one place for all checks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["check_images", "check_task", "image_batch", "images_to_storage"]

#: Image sets up to this many bytes are moved to the accelerator once, as uint8.
DEVICE_BYTES_LIMIT = 2 * 2**30


def check_images(images: Any, name: str = "images") -> None:
    """Images must be (N, C, H, W) uint8 with C in {1, 3} and N > 0."""
    shape = getattr(images, "shape", None)
    dtype = getattr(images, "dtype", None)
    if shape is None or len(shape) != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {shape}")
    if shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels in axis 1, got shape {tuple(shape)}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if dtype not in (np.uint8, torch.uint8):
        raise TypeError(f"{name} must be uint8, got {dtype}")


def check_task(data: Any, name: str, num_outputs: int | None = None) -> np.ndarray:
    """Validate a TaskData-like object; return its labels as int64."""
    for attribute in ("images", "labels"):
        if not hasattr(data, attribute):
            raise TypeError(f"{name} must be a TaskData (with .images and .labels), got {type(data).__name__}")
    check_images(data.images, f"{name}.images")
    labels = np.asarray(data.labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name}.labels must be a 1-d integer array, got {labels.dtype} {labels.shape}")
    if len(labels) != len(data.images):
        raise ValueError(f"{name} has {len(data.images)} images but {len(labels)} labels")
    if labels.min() < 0:
        raise ValueError(f"{name}.labels must be codes >= 0, got {labels.min()}")
    if num_outputs is not None and labels.max() >= num_outputs:
        raise ValueError(
            f"{name}.labels go up to {labels.max()} but the model's head has {num_outputs} outputs"
        )
    return labels.astype(np.int64, copy=False)


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
    if isinstance(storage, torch.Tensor) and storage.device == device:
        return storage[index]
    if isinstance(index, torch.Tensor):
        index = index.cpu().numpy()
    batch = storage[index]
    tensor = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(batch))
    if device.type == "cuda":
        tensor = tensor.pin_memory()
    return tensor.to(device, non_blocking=True)
