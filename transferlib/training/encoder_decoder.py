"""Training encoder-decoders on classification labels or dense per-pixel targets, cached.

:func:`transferlib.training.train` takes one class label per image. The task-transfer
experiments of Bao et al. (2019, §4.2) train one :class:`~transferlib.models.EncoderDecoder`
per task, classification and dense alike, and compare the tasks through the encoders, so every
encoder comes out of one procedure: :func:`train_encoder_decoder` (cross-entropy on labels, mean
squared error on maps), with the schedule of the shared loop (SGD with momentum and weight
decay, cosine decay of the learning rate per step, channels-last convolutions, images moved to
the device once). With ``freeze_encoder`` it trains only the head or decoder on the frozen
encoder's codes, which are computed once (the transfer protocol "frozen source encoder + trained
target decoder"). :func:`train_encoder_decoder_cached` adds the on-disk cache and can start from
another encoder (transfer with a fresh head or decoder).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from transferlib._progress import tqdm
from transferlib.cache import config_key, fingerprint_arrays, load_or_build, load_torch, save_torch
from transferlib.models import EncoderDecoder, build_model, preprocess
from transferlib.provenance import code_version
from transferlib.training._inputs import image_batch, images_to_storage
from transferlib.training.device import resolve_device, seed_everything
from transferlib.training.loop import TrainResult
from transferlib.validation import check_images

__all__ = ["train_encoder_decoder", "train_encoder_decoder_cached"]

_EVAL_BATCH = 512


def _check_targets(model: EncoderDecoder, targets: Any, n: int, name: str) -> torch.Tensor:
    array = np.asarray(targets)
    if len(array) != n:
        raise ValueError(f"{name} has {len(array)} entries but there are {n} images")
    if model.dense:
        side = model.output_size
        if array.ndim not in (3, 4) or array.shape[-2:] != (side, side):
            raise ValueError(
                f"{name} must be (n, {side}, {side}) or (n, C, {side}, {side}) maps for this "
                f"decoder, got shape {array.shape}"
            )
        if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
            raise TypeError(f"{name} must be finite float maps, got dtype {array.dtype}")
        maps = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
        return maps if maps.ndim == 4 else maps[:, None]
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must be 1-D integer class codes, got {array.dtype} {array.shape}")
    classes = model.head.out_features
    if array.min() < 0 or array.max() >= classes:
        raise ValueError(f"{name} must lie in [0, {classes}), the classes of the head")
    return torch.from_numpy(array.astype(np.int64))


def _loss(model: EncoderDecoder, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if model.dense:
        return F.mse_loss(output.float(), target)
    return F.cross_entropy(output.float(), target)


def _input_batches(
    model: EncoderDecoder, images: Any, device: torch.device, channels_last: bool
) -> Callable[[Any], torch.Tensor]:
    """``batch(index)``: the network input of the images ``index`` (uint8 storage -> floats)."""

    def batch(index: Any) -> torch.Tensor:
        x = preprocess(model, image_batch(images, index, device))
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    return batch


def _codes(model: EncoderDecoder, batch: Callable[[Any], torch.Tensor], n: int) -> torch.Tensor:
    """The frozen encoder's codes of ``n`` images, in eval mode, computed once (no_grad, not
    inference_mode: the readout's backward pass saves them)."""
    model.eval()
    with torch.no_grad():
        parts = [model.encode(batch(slice(s, s + _EVAL_BATCH))) for s in range(0, n, _EVAL_BATCH)]
    return torch.cat(parts).contiguous()


def _evaluate(
    model: EncoderDecoder, forward: Callable[[Any], torch.Tensor], targets: torch.Tensor
) -> tuple[float, float]:
    """Mean loss and accuracy (NaN for dense targets) over a whole split."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(targets), _EVAL_BATCH):
            rows = slice(start, start + _EVAL_BATCH)
            output, target = forward(rows), targets[rows]
            loss_sum += float(_loss(model, output, target)) * len(target)
            if not model.dense:
                correct += int((output.argmax(1) == target).sum())
    n = len(targets)
    return loss_sum / n, float("nan") if model.dense else correct / n


def _split_forward(
    model: EncoderDecoder, images: Any, device: torch.device, channels_last: bool, frozen: bool
) -> Callable[[Any], torch.Tensor]:
    """``forward(index)`` of a split: the whole network on images, or the readout on codes."""
    batch = _input_batches(model, images, device, channels_last)
    if not frozen:
        return lambda index: model(batch(index))
    codes = _codes(model, batch, len(images))
    return lambda index: model.readout(codes[index])


def train_encoder_decoder(
    model: EncoderDecoder,
    train_images: np.ndarray,
    train_targets: Any,
    test_images: np.ndarray | None = None,
    test_targets: Any = None,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    freeze_encoder: bool = False,
    test_every: int = 1,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train ``model`` in place on class labels or dense maps.

    Parameters
    ----------
    model : EncoderDecoder
        With a linear head (targets: class codes, cross-entropy) or a decoder (targets: float
        maps of the decoder's output size, mean squared error).
    train_images, test_images : uint8 arrays (n, C, H, W)
    train_targets, test_targets : array-like
        ``(n,)`` integer codes, or ``(n, R, R)`` / ``(n, C, R, R)`` float maps.
    epochs, lr, batch_size, momentum, weight_decay
        SGD with momentum and weight decay; the learning rate decays with a cosine over all
        steps, as in :func:`transferlib.training.train`.
    freeze_encoder : bool
        Train only the head or decoder, on codes of the frozen encoder computed once (in eval
        mode); otherwise every layer trains.
    test_every : int
        Evaluate on the test data every ``test_every`` epochs and after the last one (the test
        columns of the other epochs are NaN); with few training images, evaluating every epoch
        can cost more than training.
    seed : int
        Seeds the batch order (initialise the model under a seed of your own).
    device : str or torch.device
    progress : bool
        Progress bar over epochs.
    desc : str

    Returns
    -------
    TrainResult
        History columns ``epoch, train_loss, train_accuracy, test_loss, test_accuracy, lr,
        seconds`` (accuracies NaN for dense targets, test columns NaN without test data).
    """
    if not isinstance(model, EncoderDecoder):
        raise TypeError(f"model must be an EncoderDecoder, got {type(model).__name__}")
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("test_every", test_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be positive and finite, got {lr!r}")
    check_images(train_images, "train_images")
    targets = _check_targets(model, train_targets, len(train_images), "train_targets")
    if (test_images is None) != (test_targets is None):
        raise ValueError("pass both test_images and test_targets, or neither")
    dev = resolve_device(device)
    channels_last = dev.type != "mps"
    seed_everything(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    storage = images_to_storage(train_images, dev)
    forward = _split_forward(model, storage, dev, channels_last, freeze_encoder)
    targets = targets.to(dev)
    evaluate = None
    if test_images is not None:
        check_images(test_images, "test_images")
        test_y = _check_targets(model, test_targets, len(test_images), "test_targets").to(dev)
        test_forward = _split_forward(
            model, images_to_storage(test_images, dev), dev, channels_last, freeze_encoder
        )
        evaluate = lambda: _evaluate(model, test_forward, test_y)
    parameters = model.head.parameters() if freeze_encoder else model.parameters()
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    n = len(targets)
    steps_per_epoch = n // batch_size + (n % batch_size > 1)  # no batch of one (batch norm)
    total = epochs * steps_per_epoch
    step, rows, start_time = 0, [], time.perf_counter()
    for epoch in tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False):
        model.train()
        if freeze_encoder:
            model.eval()  # batch-norm statistics of the frozen encoder stay as they are
            model.head.train()
        order = torch.randperm(n, generator=generator).to(dev)
        loss_sum, correct, seen = torch.zeros((), device=dev), 0, 0
        for index in order.split(batch_size)[:steps_per_epoch]:
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total))
            output = forward(index)
            loss = _loss(model, output, targets[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * len(index)
            if not model.dense:
                correct += int((output.detach().argmax(1) == targets[index]).sum())
            seen += len(index)
            step += 1
        row = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": float("nan") if model.dense else correct / seen,
            "test_loss": float("nan"),
            "test_accuracy": float("nan"),
        }
        if evaluate is not None and (epoch % test_every == 0 or epoch == epochs):
            row["test_loss"], row["test_accuracy"] = evaluate()
        row["lr"] = optimizer.param_groups[0]["lr"]
        row["seconds"] = time.perf_counter() - start_time
        rows.append(row)
    model.eval()
    return TrainResult(model=model, history=pd.DataFrame(rows))


def _initial_model(
    model_kwargs: Mapping[str, Any], init: EncoderDecoder | None, seed: int
) -> EncoderDecoder:
    """A new model under ``seed``: from scratch, or ``init``'s encoder with a fresh readout."""
    kwargs = dict(model_kwargs)
    torch.manual_seed(seed)
    if init is None:
        return build_model("encoder_decoder", **kwargs)
    model = copy.deepcopy(init).cpu().to(memory_format=torch.contiguous_format)
    if kwargs.get("dense", False):
        model.replace_decoder(kwargs["num_classes"], kwargs.get("width"))
    else:
        model.replace_head(kwargs["num_classes"])
    return model


def train_encoder_decoder_cached(
    train_images: np.ndarray,
    train_targets: Any,
    test_images: np.ndarray | None = None,
    test_targets: Any = None,
    *,
    model_kwargs: Mapping[str, Any],
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    init: tuple[str, EncoderDecoder] | None = None,
    freeze_encoder: bool = False,
    device: str | torch.device = "auto",
    cache_dir: str | Path | None = None,
    progress: bool = True,
    desc: str = "train",
    **train_kwargs: Any,
) -> TrainResult:
    """:func:`train_encoder_decoder` on a new model, or its result from the cache.

    Parameters
    ----------
    train_images, train_targets, test_images, test_targets
        As for :func:`train_encoder_decoder`.
    model_kwargs : mapping
        Arguments of :class:`~transferlib.models.EncoderDecoder` (``num_classes``, ``dense``,
        ``width``, ...). With ``init`` only ``num_classes``, ``dense`` and (for a decoder)
        ``width`` are used: they describe the new readout.
    epochs, lr, batch_size, seed
        The model (or the new readout) is initialised under ``seed`` and trained with it.
    init : (str, EncoderDecoder), optional
        A trained encoder to start from, with its cache key: its weights are copied and its
        head or decoder replaced by a fresh one for the new targets.
    freeze_encoder : bool
        Train only the new readout on the frozen encoder (see :func:`train_encoder_decoder`).
    device : str or torch.device
        Where to train (not part of the key).
    cache_dir : path, optional
    progress, desc
        Progress bar (not part of the key).
    **train_kwargs
        ``momentum``, ``weight_decay``, ``test_every`` (part of the key).

    Returns
    -------
    TrainResult
        ``from_cache`` and ``key`` set.
    """
    if "num_classes" not in model_kwargs:
        raise ValueError("model_kwargs must give num_classes")
    if freeze_encoder and init is None:
        raise ValueError("freeze_encoder needs an encoder to start from (init)")
    config = {
        "kind": "encoder_decoder",
        "model": dict(model_kwargs),
        "init": None if init is None else init[0],
        "freeze_encoder": freeze_encoder,
        "train": fingerprint_arrays(train_images, np.asarray(train_targets)),
        "test": None
        if test_images is None
        else fingerprint_arrays(test_images, np.asarray(test_targets)),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "train_kwargs": dict(train_kwargs),
        "code": code_version(__name__),
    }
    start = None if init is None else init[1]

    def build() -> dict[str, Any]:
        result = train_encoder_decoder(
            _initial_model(model_kwargs, start, seed),
            train_images,
            train_targets,
            test_images,
            test_targets,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            freeze_encoder=freeze_encoder,
            seed=seed,
            device=device,
            progress=progress,
            desc=desc,
            **train_kwargs,
        )
        state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
        return {"state_dict": state, "history": result.history.to_dict(orient="list")}

    key = config_key(config)
    stored, from_cache = load_or_build(
        "models",
        key,
        build,
        save=save_torch,
        load=lambda path: load_torch(path, map_location="cpu"),
        suffix=".pt",
        cache_dir=cache_dir,
        description={"desc": desc},
    )
    model = _initial_model(model_kwargs, start, seed)
    model.load_state_dict(stored["state_dict"])
    model.to(resolve_device(device)).eval()
    history = pd.DataFrame(stored["history"])
    return TrainResult(model=model, history=history, from_cache=from_cache, key=key)
