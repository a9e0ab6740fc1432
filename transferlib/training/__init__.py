"""Training, feature extraction and head re-training for every transfer protocol.

- :func:`resolve_device`, :func:`seed_everything` — devices and determinism.
- :func:`train`, :func:`fine_tune`, :func:`train_from_scratch` — SGD training
  with per-epoch history (:class:`TrainResult`).
- :func:`extract` — batched, gradient-free probabilities / features / layers.
- :func:`retrain_head`, :func:`retrain_heads` — a new head on frozen features
  ("logistic", "sgd" = LEEP protocol, "linear_svm" = Tran et al.), one task or
  many at once (:class:`HeadResult`).
- :func:`train_cached`, :func:`fine_tune_cached` — the same, cached on disk.
"""

from transferlib.training.cached import fine_tune_cached, train_cached
from transferlib.training.device import resolve_device, seed_everything
from transferlib.training.extract import (
    activation_maps,
    extract,
    inference_batch_size,
    memory_layout,
)
from transferlib.training.heads import HEAD_METHODS, HeadResult, retrain_head, retrain_heads
from transferlib.training.loop import (
    SCHEDULES,
    TrainResult,
    augment_batch,
    fine_tune,
    train,
    train_from_scratch,
)

__all__ = [
    "HEAD_METHODS",
    "SCHEDULES",
    "HeadResult",
    "TrainResult",
    "activation_maps",
    "augment_batch",
    "extract",
    "fine_tune",
    "fine_tune_cached",
    "inference_batch_size",
    "memory_layout",
    "resolve_device",
    "retrain_head",
    "retrain_heads",
    "seed_everything",
    "train",
    "train_cached",
    "train_from_scratch",
]
