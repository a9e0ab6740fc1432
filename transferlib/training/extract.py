"""Batched, gradient-free outputs of a network (probabilities, features, layers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from transferlib._progress import tqdm
from transferlib.models import TransferModel, preprocess
from transferlib.training._inputs import image_batch
from transferlib.training.device import resolve_device
from transferlib.validation import check_images

__all__ = ["activation_maps", "extract", "inference_batch_size", "memory_layout"]


_BASIC = ("logits", "probs", "features")


def inference_batch_size(device: torch.device, input_size: int | None) -> int:
    """Images per forward pass when none is asked for: 256 on an accelerator; on a CPU, small
    batches whose activations stay in cache (EfficientNet-Lite0 on 2 cores ran 1.7x faster
    with 32 images a batch than with 256 at 64 px, and 1.4x with 16 at 224 px;
    ``benchmarks/bench_training.py``)."""
    if device.type != "cpu":
        return 256
    return 32 if input_size is None or input_size <= 64 else 16


def memory_layout(device: torch.device) -> torch.memory_format:
    """Layout of models and image batches for inference: channels-last, faster for
    convolutions with cuDNN and oneDNN (CPU), except on MPS."""
    return torch.contiguous_format if device.type == "mps" else torch.channels_last


def _check_batch_size(batch_size: Any, model: TransferModel, device: torch.device) -> int:
    if batch_size is None:
        return inference_batch_size(device, model.input_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    return batch_size


def _check_outputs(model: TransferModel, outputs: Sequence[str]) -> tuple[str, ...]:
    if isinstance(outputs, str):
        outputs = (outputs,)
    outputs = tuple(dict.fromkeys(outputs))
    if not outputs:
        raise ValueError("outputs is empty")
    unknown = [name for name in outputs if name not in _BASIC and name not in model.layers]
    if unknown:
        raise ValueError(
            f"unknown output(s) {unknown}; choose from {_BASIC} or a layer of the model {model.layers}"
        )
    return outputs


def batched_outputs(
    model: TransferModel,
    images: Any,
    outputs: Sequence[str],
    *,
    batch_size: int,
    device: torch.device,
    amp: bool,
    channels_last: bool,
    progress: bool = False,
    desc: str = "extract",
) -> dict[str, torch.Tensor]:
    """Outputs for every image, concatenated on ``device`` (float32).

    ``images`` is uint8 storage as returned by ``images_to_storage`` (a device
    tensor, or a host array / lazy image set that supports slicing).
    """
    was_training = model.training
    model.eval()
    layers = [name for name in outputs if name not in ("logits", "probs")]
    layers = [model.layers[-1] if name == "features" else name for name in layers]
    need_logits = "logits" in outputs or "probs" in outputs
    if need_logits and model.layers[-1] not in layers:
        layers.append(model.layers[-1])
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in outputs}
    n = len(images)
    starts = range(0, n, batch_size)
    with torch.inference_mode(), torch.autocast(device.type, enabled=amp):
        for start in tqdm(starts, desc=desc, disable=not progress, leave=False):
            x = preprocess(model, image_batch(images, slice(start, start + batch_size), device))
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            pooled = model.pooled(x, layers)
            logits = model.head(pooled[model.layers[-1]]).float() if need_logits else None
            for name in outputs:
                if name == "logits":
                    value = logits
                elif name == "probs":
                    value = logits.softmax(dim=1)
                elif name == "features":
                    value = pooled[model.layers[-1]]
                else:
                    value = pooled[name]
                chunks[name].append(value.float())
    model.train(was_training)
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def extract(
    model: TransferModel,
    images: Any,
    outputs: Sequence[str] = ("probs", "features"),
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    as_numpy: bool = True,
    amp: bool | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray] | dict[str, torch.Tensor]:
    """Run a frozen network over images in batches and collect its outputs.

    Parameters
    ----------
    model : TransferModel
    images : uint8 array (N, C, H, W)
        Or any object with ``len()``, ``.shape``, ``.dtype`` and slicing that
        returns such arrays (large real image sets).
    outputs : sequence of str
        ``"logits"``, ``"probs"`` (softmax of the logits), ``"features"``
        (penultimate representation) and/or layer names from ``model.layers``
        (globally average-pooled activations, for layer-wise experiments).
        All are computed in one forward pass per batch.
    batch_size : int, optional
        Images per forward pass; default :func:`inference_batch_size` of the device.
    device : str or torch.device
        ``"auto"`` (see :func:`~transferlib.training.resolve_device`), ``"cpu"``,
        ``"cuda"``, ``"mps"``.
    as_numpy : bool
        Return NumPy arrays (default) or tensors on ``device``.
    amp : bool, optional
        Autocast to float16 (default: on for CUDA only). Outputs are float32.
    progress : bool
        Show a progress bar over batches.

    Returns
    -------
    dict
        Output name -> array of shape (N, K) for logits/probs, (N, D) otherwise.

    Notes
    -----
    Nothing is cached here: :func:`transferlib.experiments.sources.network_outputs` caches each
    output per network and image set. The model is moved to ``device`` (in channels-last layout except on MPS)
    and run in eval mode; its train/eval mode is restored afterwards.
    """
    check_images(images)
    outputs = _check_outputs(model, outputs)
    dev = resolve_device(device)
    batch_size = _check_batch_size(batch_size, model, dev)
    layout = memory_layout(dev)
    model.to(dev, memory_format=layout)
    result = batched_outputs(
        model,
        images,
        outputs,
        batch_size=batch_size,
        device=dev,
        amp=dev.type == "cuda" if amp is None else amp,
        channels_last=layout == torch.channels_last,
        progress=progress,
    )
    return _to_numpy(result) if as_numpy else result


def activation_maps(
    model: TransferModel,
    images: Any,
    layer: str,
    *,
    batch_size: int | None = None,
    device: str | torch.device = "auto",
    amp: bool | None = None,
) -> np.ndarray:
    """Activation maps ``(N, C, H, W)`` (float32, NumPy) of a frozen network after cut point
    ``layer`` (:meth:`~transferlib.models.TransferModel.activation`): the frozen lower part of a
    network that is fine-tuned from ``layer`` on, run once.

    Batches, layout and precision as :func:`extract` (channels-last, autocast on CUDA by
    default); the model runs in eval mode and its train/eval mode is restored.
    """
    check_images(images)
    model._check_cut(layer)
    dev = resolve_device(device)
    batch_size = _check_batch_size(batch_size, model, dev)
    layout = memory_layout(dev)
    model.to(dev, memory_format=layout)
    was_training = model.training
    model.eval()
    parts = []
    autocast = torch.autocast(dev.type, enabled=dev.type == "cuda" if amp is None else amp)
    with torch.inference_mode(), autocast:
        for start in range(0, len(images), batch_size):
            x = preprocess(model, image_batch(images, slice(start, start + batch_size), dev))
            parts.append(model.activation(x.contiguous(memory_format=layout), layer).float().cpu())
    model.train(was_training)
    return torch.cat(parts).contiguous().numpy()


def _to_numpy(outputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {name: value.cpu().numpy() for name, value in outputs.items()}
