"""Source networks with one interface for transfer experiments.

Every model built here is a :class:`TransferModel`: ``features(x)`` (penultimate
representation), ``head`` (last linear layer), ``forward(x) = head(features(x))``,
``intermediate(x, layer)`` (pooled activations at a named depth), and the
attributes ``feature_dim``, ``input_size``, ``mean``, ``std``, ``layers``.

>>> from transferlib.models import build_model
>>> model = build_model("resnet20", num_classes=10)
>>> model.feature_dim, model.layers
(64, ('stem', 'layer1', 'layer2', 'layer3'))
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models import ResNet18_Weights

from transferlib.models.base import TransferModel
from transferlib.models.cifar_resnet import CifarResNet, resnet20
from transferlib.models.efficientnet import IMAGENET_TOP1, EfficientNetLite, efficientnet_lite
from transferlib.models.encoder_decoder import EncoderDecoder
from transferlib.models.resnet import ResNet18
from transferlib.models.small_cnn import SmallCNN

__all__ = [
    "IMAGENET_CLASSES",
    "IMAGENET_TOP1",
    "MODELS",
    "CifarResNet",
    "EfficientNetLite",
    "EncoderDecoder",
    "ResNet18",
    "SmallCNN",
    "TransferModel",
    "build_model",
    "efficientnet_lite",
    "preprocess",
    "resnet20",
]

#: The 1000 ImageNet-1k class names in the standard index order (from the
#: metadata bundled with torchvision, available offline).
IMAGENET_CLASSES: tuple[str, ...] = tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])

#: Model name -> constructor ``f(num_classes, **kw)``.
MODELS: dict[str, Callable[..., TransferModel]] = {
    "small_cnn": SmallCNN,
    "resnet20": resnet20,
    "resnet18": ResNet18,
    "encoder_decoder": EncoderDecoder,
    **{f"efficientnet_lite{v}": partial(efficientnet_lite, v) for v in (0, 1, 2)},
}


def build_model(name: str, num_classes: int | None = None, **kwargs: Any) -> TransferModel:
    """Build a registered model.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`: ``"small_cnn"``, ``"resnet20"``, ``"resnet18"``,
        ``"efficientnet_lite0"``, ``"efficientnet_lite1"``, ``"efficientnet_lite2"``,
        ``"encoder_decoder"``.
    num_classes : int
        Width of the head. Required except for EfficientNet-Lite, where
        ``None`` keeps the pretrained 1000-class ImageNet head.
    **kwargs
        Passed to the constructor (``depth``/``width`` for resnet20,
        ``small_input`` for resnet18, ``width`` for small_cnn, ``pretrained``
        and ``input_size`` for EfficientNet-Lite).

    Notes
    -----
    Weights are initialised from PyTorch's global random state: call
    ``torch.manual_seed`` first (as :func:`transferlib.training.train_from_scratch`
    does) for reproducible initialisations.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    if num_classes is None and not name.startswith("efficientnet"):
        raise ValueError(f"model {name!r} needs num_classes")
    if num_classes is not None and (
        isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1
    ):
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return MODELS[name](num_classes=None if num_classes is None else int(num_classes), **kwargs)


def preprocess(model: TransferModel, images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Turn a batch of uint8 images into the model's float input.

    Scales to [0, 1], repeats a single grey channel to RGB, resizes (bilinear,
    antialiased) to ``model.input_size`` when that is set and differs, and
    normalises with ``model.mean`` / ``model.std``. Runs on the images' device.

    Parameters
    ----------
    model : TransferModel
    images : uint8 tensor or array of shape (B, C, H, W), C in {1, 3}

    Returns
    -------
    torch.Tensor
        float32, shape (B, 3, S, S) with S = ``model.input_size`` (or H, W).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8, got {images.dtype}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images must have shape (B, C, H, W) with C in (1, 3), got {tuple(images.shape)}"
        )
    x = images.float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    size = model.input_size
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
    mean = torch.tensor(model.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(model.std, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std
