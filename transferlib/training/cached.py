"""Training with an on-disk cache: re-running skips finished work.

A trained network is stored under ``cache_root(cache_dir)/models/<key>.pt``
with its history, where ``key`` hashes the full configuration: model name and
constructor arguments, a content hash of the training and test data, the seed,
every hyper-parameter and the code version of the training loop and the models
(:func:`transferlib.provenance.code_version`), so a change to that code retrains.
The device is not part of the key: a model trained on a GPU is reused on a
CPU. Storage goes through :func:`transferlib.cache.load_or_build`: a network is
trained once even when several processes ask for it, and a damaged file is
detected and retrained.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from transferlib.cache import config_key, load_or_build, load_torch, save_torch
from transferlib.models import TransferModel, build_model
from transferlib.provenance import code_version
from transferlib.training import loop
from transferlib.training.device import resolve_device
from transferlib.training.loop import TrainResult, _num_classes

__all__ = ["fine_tune_cached", "train_cached"]


def _data_key(data: Any) -> str | None:
    if data is None:
        return None
    fingerprint = getattr(data, "fingerprint", None)
    if fingerprint is None:
        raise TypeError(f"{type(data).__name__} has no fingerprint(); pass a TaskData")
    return fingerprint()


def _cached(
    config: Mapping[str, Any],
    make_model: Callable[[], TransferModel],
    run: Callable[[], TrainResult],
    cache_dir: str | Path | None,
    device: str | torch.device,
) -> TrainResult:
    key = config_key({**config, "code": code_version("transferlib.training.loop")})

    def save(path: Path, result: TrainResult) -> None:
        state = {name: value.detach().cpu() for name, value in result.model.state_dict().items()}
        history = result.history.to_dict(orient="list")
        save_torch(path, {"state_dict": state, "history": history, "config": config_key(config)})

    def load(path: Path) -> TrainResult:
        stored = load_torch(path, map_location="cpu")
        model = make_model()
        model.load_state_dict(stored["state_dict"])
        model.to(resolve_device(device)).eval()
        return TrainResult(model=model, history=pd.DataFrame(stored["history"]), from_cache=True)

    result, _ = load_or_build(
        "models",
        key,
        run,
        save=save,
        load=load,
        suffix=".pt",
        cache_dir=cache_dir,
        description=f"{config['kind']} {config.get('model', config.get('source'))}",
    )
    result.key = key
    return result


def train_cached(
    model_name: str,
    train_data: Any,
    test_data: Any | None = None,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int = 0,
    device: str | torch.device = "auto",
    cache_dir: str | Path | None = None,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    desc: str = "train",
    **train_kwargs: Any,
) -> TrainResult:
    """:func:`~transferlib.training.train_from_scratch`, or its cached result.

    Parameters
    ----------
    model_name, train_data, test_data, epochs, lr, batch_size, seed, model_kwargs
        As for :func:`~transferlib.training.train_from_scratch`.
    device : str or torch.device
        Where to train (not part of the cache key).
    cache_dir : path, optional
        Cache root (see :func:`transferlib.cache.cache_root`).
    progress, desc : bool, str
        Progress bar and its label (not part of the key).
    **train_kwargs
        Further options of :func:`~transferlib.training.train` (momentum,
        weight_decay, schedule, augment, ...); all are part of the key.

    Returns
    -------
    TrainResult
        ``from_cache`` tells whether training was skipped; ``key`` identifies
        the configuration (and keys the network's cached outputs).
    """
    num_classes = _num_classes(train_data, test_data)
    model_kwargs = dict(model_kwargs or {})
    config = {
        "kind": "train",
        "model": model_name,
        "model_kwargs": model_kwargs,
        "num_classes": num_classes,
        "train": _data_key(train_data),
        "test": _data_key(test_data),
        "epochs": epochs,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "train_kwargs": train_kwargs,
    }
    return _cached(
        config,
        lambda: build_model(model_name, num_classes, **model_kwargs),
        lambda: loop.train_from_scratch(
            model_name,
            train_data,
            test_data,
            epochs,
            lr,
            batch_size,
            seed=seed,
            model_kwargs=model_kwargs,
            device=device,
            progress=progress,
            desc=desc,
            **train_kwargs,
        ),
        cache_dir,
        device,
    )


def fine_tune_cached(
    source: TrainResult | tuple[str, TransferModel],
    train_data: Any,
    test_data: Any | None = None,
    *,
    epochs: int,
    lr: float,
    backbone_lr_multiplier: float = 0.1,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "auto",
    cache_dir: str | Path | None = None,
    progress: bool = True,
    desc: str = "fine-tune",
    **train_kwargs: Any,
) -> TrainResult:
    """:func:`~transferlib.training.fine_tune`, or its cached result.

    ``source`` is a cached :class:`TrainResult` (its ``key`` identifies the
    source network) or a pair ``(identifier, model)`` for other models, e.g.
    ``("efficientnet_lite0-imagenet", efficientnet_lite(0))``.
    """
    if isinstance(source, TrainResult):
        if source.key is None:
            raise ValueError(
                "the source TrainResult has no cache key; pass (identifier, model) instead"
            )
        source_key, source_model = source.key, source.model
    else:
        source_key, source_model = source
    num_classes = _num_classes(train_data, test_data)
    config = {
        "kind": "fine_tune",
        "source": source_key,
        "num_classes": num_classes,
        "train": _data_key(train_data),
        "test": _data_key(test_data),
        "epochs": epochs,
        "lr": lr,
        "backbone_lr_multiplier": backbone_lr_multiplier,
        "batch_size": batch_size,
        "seed": seed,
        "train_kwargs": train_kwargs,
    }

    def make_model() -> TransferModel:
        model = copy.deepcopy(source_model)
        model.replace_head(num_classes)
        return model

    return _cached(
        config,
        make_model,
        lambda: loop.fine_tune(
            source_model,
            train_data,
            test_data,
            epochs,
            lr,
            backbone_lr_multiplier,
            batch_size=batch_size,
            seed=seed,
            device=device,
            progress=progress,
            desc=desc,
            **train_kwargs,
        ),
        cache_dir,
        device,
    )
