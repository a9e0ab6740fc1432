"""scikit-learn's bundled handwritten digits (1,797 images, 8x8, 10 classes) as an image dataset.

The images ship inside scikit-learn, so this dataset needs neither files nor network.
It plays the part of a small grey-scale source or target domain (like MNIST or
Fashion-MNIST in the papers): upsample it with ``image_size`` and, as LEEP did for
Fashion-MNIST, repeat the grey channel with ``channels=3`` to feed RGB models.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from transferlib.data.dataset import ImageDataset, stratified_split

__all__ = ["load_digits", "resize_images"]


def resize_images(
    images: np.ndarray, image_size: int | None, channels: int | None = None
) -> np.ndarray:
    """Resize ``(N, C, H, W)`` uint8 images (bilinear, anti-aliased) and set the channel count.

    ``channels=3`` repeats a grey channel; ``channels=1`` averages RGB to grey.
    """
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if images.ndim != 4 or images.dtype != np.uint8:
        raise TypeError(f"expected (N, C, H, W) uint8 images, got {images.dtype} {images.shape}")
    if channels is not None and images.shape[1] != channels:
        images = (
            np.repeat(images, channels, axis=1)
            if channels == 3
            else images.mean(axis=1, keepdims=True).round().astype(np.uint8)
        )
    if image_size is None or images.shape[-2:] == (image_size, image_size):
        return np.ascontiguousarray(images)
    resized = F.interpolate(
        torch.from_numpy(images).float(),
        size=(image_size, image_size),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )
    return resized.round().clamp(0, 255).to(torch.uint8).numpy()


def load_digits(
    seed: int = 0, *, image_size: int | None = None, channels: int = 1, test_fraction: float = 0.2
) -> ImageDataset:
    """Load scikit-learn's digits as an :class:`ImageDataset`.

    Parameters
    ----------
    seed : int
        Seed of the stratified train/test split.
    image_size : int, optional
        Upsample to ``image_size`` x ``image_size`` (default: native 8x8).
    channels : int
        1 (grey) or 3 (grey repeated, for RGB models).
    test_fraction : float
        Fraction of every digit held out for testing.

    Returns
    -------
    ImageDataset
        One label column, ``label`` (the digit).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    # pixel values are counts 0..16 of a 4x4 block; rescale to 0..255
    images = np.round(bunch.images * (255 / 16)).astype(np.uint8)[:, None]
    images = resize_images(images, image_size, channels)
    target = bunch.target.astype(np.int64)
    return ImageDataset(
        name="digits",
        images=images,
        labels=pd.DataFrame({"label": target}),
        splits=stratified_split(target, test_fraction, seed),
        label_names={"label": [str(d) for d in range(10)]},
        metadata={
            "source": "sklearn.datasets.load_digits",
            "identity_column": "label",
            "default_target": "label",
            "image_size": images.shape[-1],
            "channels": images.shape[1],
            "test_fraction": test_fraction,
        },
    )
