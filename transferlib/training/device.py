"""Device selection and reproducibility switches.

Determinism: :func:`seed_everything` seeds Python, NumPy and PyTorch (all
devices); with ``deterministic=True`` it also sets
``torch.use_deterministic_algorithms(True, warn_only=True)``,
``torch.backends.cudnn.deterministic = True``, ``cudnn.benchmark = False`` and
``CUBLAS_WORKSPACE_CONFIG=:4096:8``. With these, the same seed on the same
device, thread count and library versions gives bit-identical results. CPU
runs are deterministic even without the flags; CUDA runs with
``deterministic=False`` (the default in :func:`transferlib.training.train`,
for speed) may differ in the last bits between runs.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` (or an explicit name) into an available :class:`torch.device`.

    ``"auto"`` picks CUDA, then Apple's MPS, then the CPU. An explicit device
    that is not available raises :class:`ValueError` rather than falling back
    silently.
    """
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise TypeError(f"device must be a str or torch.device, got {type(device).__name__}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError as err:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} does not exist ({torch.cuda.device_count()} GPU(s))"
            )
        if resolved.index is None:
            # "cuda" and a tensor's "cuda:0" compare unequal; an indexed device keeps
            # ``tensor.device == device`` true for data already on the GPU.
            resolved = torch.device("cuda", torch.cuda.current_device())
    elif resolved.type == "mps":
        if not _mps_available():
            raise ValueError(f"device {device!r} requested but MPS is not available")
    elif resolved.type != "cpu":
        raise ValueError(f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'")
    return resolved


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and PyTorch; optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
