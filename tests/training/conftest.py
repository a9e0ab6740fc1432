"""Tiny image tasks for the training tests (seconds on a CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.data import TaskData


def make_task(
    n: int, num_classes: int = 2, size: int = 16, seed: int = 0, name: str = "toy"
) -> TaskData:
    """Images whose class is a bright square in a class-specific corner: linearly separable."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    images = rng.integers(0, 60, size=(n, 3, size, size), dtype=np.uint8)
    half = size // 2
    for k in range(num_classes):
        r, c = divmod(k, 2)
        images[labels == k, :, r * half : (r + 1) * half, c * half : (c + 1) * half] += 150
    return TaskData(
        images=images,
        labels=labels.astype(np.int64),
        class_names=tuple(f"c{k}" for k in range(num_classes)),
        name=name,
    )


@pytest.fixture(name="make_task")
def make_task_fixture():
    """The :func:`make_task` factory, for tests that need their own sizes."""
    return make_task


@pytest.fixture
def toy_split():
    return make_task(96, 3, seed=1), make_task(48, 3, seed=2)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Keep every test away from the user's cache; one torch thread (tiny models gain nothing
    from more, and on a shared machine spinning threads slow everything down)."""
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path / "cache"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
