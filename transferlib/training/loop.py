"""Training loops: train, fine_tune, train_from_scratch.

Images go to the device once as uint8 (when they fit, see
``_inputs.DEVICE_BYTES_LIMIT``); each batch is an index slice of a permuted
index tensor, and scaling, resizing, normalisation and the optional
augmentation run on the device, so there is no per-sample Python code. On CUDA
the loop uses mixed precision (float16 autocast with a gradient scaler),
channels-last memory layout and non-blocking host-to-device copies.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from transferlib._progress import tqdm
from transferlib.models import TransferModel, build_model, preprocess
from transferlib.training._inputs import image_batch, images_to_storage
from transferlib.training.device import resolve_device, seed_everything
from transferlib.training.extract import batched_outputs
from transferlib.validation import check_task

__all__ = [
    "SCHEDULES",
    "TrainResult",
    "augment_batch",
    "fine_tune",
    "train",
    "train_from_scratch",
]

SCHEDULES = ("cosine", "step", "constant")


@dataclass
class TrainResult:
    """A trained network and its per-epoch history.

    Attributes
    ----------
    model : TransferModel
        The trained network, in eval mode.
    history : pandas.DataFrame
        One row per epoch: ``epoch``, ``train_loss``, ``train_accuracy`` (on
        the augmented training batches, in train mode), ``test_loss``,
        ``test_accuracy`` (NaN without test data), ``lr`` (head learning rate
        at the end of the epoch), ``seconds`` (cumulative wall time).
    from_cache : bool
        Whether the model was loaded from the cache instead of trained.
    key : str or None
        Cache key of the configuration (set by the cached functions); outputs of the
        network are cached under it (:func:`transferlib.experiments.sources.network_outputs`).
    """

    model: TransferModel
    history: pd.DataFrame
    from_cache: bool = False
    key: str | None = None

    @property
    def final_test_accuracy(self) -> float:
        """Test accuracy after the last epoch."""
        return float(self.history["test_accuracy"].iloc[-1]) if len(self.history) else float("nan")


def augment_batch(
    x: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True
) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` pixels, and random horizontal flip.

    Vectorised over the batch: one gather builds every crop. The random
    numbers come from a CPU ``generator`` so results do not depend on the device.
    """
    batch, _, height, width = x.shape
    device = x.device
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator).to(device)
        rows = offsets[0, :, None] + torch.arange(height, device=device)
        cols = offsets[1, :, None] + torch.arange(width, device=device)
        b = torch.arange(batch, device=device)[:, None, None]
        x = padded[b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mask = (torch.rand(batch, generator=generator) < 0.5).to(device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x.contiguous()


def _lr_factor(schedule: str, step: int, total_steps: int, warmup_steps: int = 0) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then the schedule over the rest."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if schedule == "step":  # divide by 10 at 50% and 75% of training
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return 1.0


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be positive and finite, got {value!r}")


def train(
    model: TransferModel,
    train_data: Any,
    test_data: Any | None = None,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 128,
    *,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    nesterov: bool = False,
    schedule: str = "cosine",
    warmup_epochs: float = 0.0,
    device: str | torch.device = "auto",
    seed: int = 0,
    augment: bool = False,
    backbone_lr_multiplier: float = 1.0,
    amp: bool | None = None,
    channels_last: bool | None = None,
    deterministic: bool = False,
    eval_batch_size: int = 512,
    eval_every: int = 1,
    progress: bool = True,
    desc: str = "train",
) -> TrainResult:
    """Train all layers of ``model`` with SGD on a TaskData, in place.

    Parameters
    ----------
    model : TransferModel
        Trained in place and returned in :attr:`TrainResult.model`.
    train_data, test_data : TaskData
        uint8 images (n, C, H, W) and int64 labels; ``test_data`` may be None.
    epochs, lr, batch_size : int, float, int
    momentum, weight_decay : float
        SGD with momentum and (coupled) weight decay on every parameter.
    nesterov : bool
        Nesterov momentum.
    schedule : {"cosine", "step", "constant"}
        Learning-rate schedule, updated every step: cosine decay to 0, or
        division by 10 at 50% and 75% of the steps.
    warmup_epochs : float
        Raise the learning rate linearly from ``lr / warmup_steps`` to ``lr`` over this many
        epochs before the schedule starts (0: no warm-up). A warm-up lets a network train at a
        learning rate that would make its first steps diverge or stall.
    device : str or torch.device
        See :func:`~transferlib.training.resolve_device`.
    seed : int
        Seeds shuffling, augmentation and dropout (see
        :func:`~transferlib.training.seed_everything`). Initialise the model
        under the same seed for a fully reproducible run (as
        :func:`train_from_scratch` does).
    augment : bool
        Random crop (zero padding 4) and horizontal flip, for CIFAR-like
        images. Off by default: flips change characters in Glyphs.
    backbone_lr_multiplier : float
        Learning rate of every non-head parameter relative to ``lr``.
    amp : bool, optional
        Mixed precision (float16 autocast, gradient scaling); default on for CUDA only.
    channels_last : bool, optional
        Channels-last memory layout; default on for CUDA and CPU (faster
        convolutions with cuDNN and oneDNN), off for MPS.
    deterministic : bool
        Force deterministic kernels (slower on CUDA).
    eval_batch_size : int
    eval_every : int
        Evaluate ``test_data`` after every ``eval_every``-th epoch and always after the last;
        ``0`` evaluates only after the last. Skipped epochs have NaN test columns. Evaluating
        a test set a fifth of the training set's size after every epoch costs about 7% of the
        training time of a small network on a CPU.
    progress : bool
        Progress bar over epochs (with loss and test accuracy).

    Returns
    -------
    TrainResult
    """
    num_outputs = model.head.out_features
    train_labels = check_task(train_data, "train_data", num_outputs)
    test_labels = None if test_data is None else check_task(test_data, "test_data", num_outputs)
    if np.unique(train_labels).size < 2:
        raise ValueError("train_data has only one class; training needs at least two")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(eval_every, bool) or not isinstance(eval_every, int) or eval_every < 0:
        raise ValueError(f"eval_every must be a non-negative integer, got {eval_every!r}")
    _check_positive(lr=lr, backbone_lr_multiplier=backbone_lr_multiplier)
    if not np.isfinite(warmup_epochs) or not 0 <= warmup_epochs < epochs:
        raise ValueError(f"warmup_epochs must be in [0, epochs), got {warmup_epochs!r}")
    if nesterov and momentum <= 0:
        raise ValueError("nesterov momentum needs momentum > 0")
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")
    dev = resolve_device(device)
    use_amp = dev.type == "cuda" if amp is None else bool(amp)
    use_cl = dev.type != "mps" if channels_last is None else bool(channels_last)
    seed_everything(seed, deterministic)
    generator = torch.Generator().manual_seed(seed)

    model.to(dev)
    if use_cl:
        model.to(memory_format=torch.channels_last)
    images = images_to_storage(train_data.images, dev)
    labels = torch.from_numpy(train_labels).to(dev)
    test_images = None if test_data is None else images_to_storage(test_data.images, dev)
    test_targets = None if test_labels is None else torch.from_numpy(test_labels).to(dev)

    head_params = list(model.head.parameters())
    groups = [{"params": head_params, "lr": lr, "base_lr": lr}]
    backbone = model.backbone_parameters()
    if backbone:
        base = lr * backbone_lr_multiplier
        groups.insert(0, {"params": backbone, "lr": base, "base_lr": base})
    optimizer = torch.optim.SGD(
        groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov
    )
    scaler = torch.amp.GradScaler(dev.type, enabled=use_amp and dev.type == "cuda")

    n = len(train_labels)
    # A last batch of one sample would break batch normalisation: drop it.
    steps_per_epoch = n // batch_size + (n % batch_size > 1)
    total_steps = epochs * steps_per_epoch
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    step = 0
    rows = []
    start_time = time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=desc, disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(n, generator=generator).to(dev)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        seen = 0
        for index in order.split(batch_size)[:steps_per_epoch]:
            factor = _lr_factor(schedule, step, total_steps, warmup_steps)
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * factor
            x = preprocess(model, image_batch(images, index, dev))
            if augment:
                x = augment_batch(x, generator)
            if use_cl:
                x = x.contiguous(memory_format=torch.channels_last)
            y = labels[index]
            with torch.autocast(dev.type, dtype=torch.float16, enabled=use_amp):
                logits = model(x)
                loss = F.cross_entropy(logits.float(), y)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum += loss.detach() * len(index)
            correct += (logits.detach().argmax(1) == y).sum()
            seen += len(index)
            step += 1
        row = {
            "epoch": epoch,
            "train_loss": loss_sum.item() / seen,
            "train_accuracy": correct.item() / seen,
            "test_loss": float("nan"),
            "test_accuracy": float("nan"),
        }
        evaluate = epoch == epochs or (eval_every > 0 and epoch % eval_every == 0)
        if test_images is not None and evaluate:
            logits = batched_outputs(
                model,
                test_images,
                ("logits",),
                batch_size=eval_batch_size,
                device=dev,
                amp=use_amp,
                channels_last=use_cl,
            )["logits"]
            row["test_loss"] = F.cross_entropy(logits, test_targets).item()
            row["test_accuracy"] = (logits.argmax(1) == test_targets).float().mean().item()
        row["lr"] = optimizer.param_groups[-1]["lr"]
        row["seconds"] = time.perf_counter() - start_time
        rows.append(row)
        bar.set_postfix(loss=f"{row['train_loss']:.3f}", test_acc=f"{row['test_accuracy']:.3f}")
    model.eval()
    return TrainResult(model=model, history=pd.DataFrame(rows))


def fine_tune(
    model: TransferModel,
    train_data: Any,
    test_data: Any | None = None,
    epochs: int = 10,
    lr: float = 0.01,
    backbone_lr_multiplier: float = 0.1,
    *,
    batch_size: int = 64,
    seed: int = 0,
    **kwargs: Any,
) -> TrainResult:
    """Transfer by fine-tuning: new head for the target classes, all layers trained.

    The source ``model`` is left untouched (a deep copy is trained). The head is
    replaced by a freshly initialised ``feature_dim -> train_data.num_classes``
    layer (initialised under ``seed``); the backbone trains at
    ``lr * backbone_lr_multiplier`` (P2L uses 0.1), the head at ``lr``.

    Parameters
    ----------
    model : TransferModel
        Source network.
    train_data, test_data : TaskData
    epochs, lr, backbone_lr_multiplier, batch_size, seed
    **kwargs
        Passed to :func:`train` (momentum, weight_decay, schedule, device,
        augment, progress, ...).
    """
    num_classes = _num_classes(train_data, test_data)
    target = copy.deepcopy(model)
    torch.manual_seed(seed)
    target.replace_head(num_classes)
    kwargs.setdefault("desc", "fine-tune")
    return train(
        target,
        train_data,
        test_data,
        epochs,
        lr,
        batch_size,
        seed=seed,
        backbone_lr_multiplier=backbone_lr_multiplier,
        **kwargs,
    )


def train_from_scratch(
    model_name: str,
    train_data: Any,
    test_data: Any | None = None,
    epochs: int = 10,
    lr: float = 0.1,
    batch_size: int = 128,
    *,
    seed: int = 0,
    model_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> TrainResult:
    """Build ``model_name`` with a seeded random initialisation and train it.

    The reference ("no transfer") model of LEEP §5.5 and P2L, and the way source
    models are made. ``model_kwargs`` go to
    :func:`~transferlib.models.build_model`; ``kwargs`` to :func:`train`.
    """
    num_classes = _num_classes(train_data, test_data)
    torch.manual_seed(seed)
    model = build_model(model_name, num_classes, **(model_kwargs or {}))
    return train(model, train_data, test_data, epochs, lr, batch_size, seed=seed, **kwargs)


def _num_classes(train_data: Any, test_data: Any | None) -> int:
    labels = check_task(train_data, "train_data")
    declared = getattr(train_data, "num_classes", None)
    num = int(declared) if declared is not None else int(labels.max()) + 1
    if test_data is not None:
        num = max(num, int(check_task(test_data, "test_data").max()) + 1)
    if num < 2:
        raise ValueError("training needs at least two classes")
    return num
