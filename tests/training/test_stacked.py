"""Many tasks trained at once on grouped channels give the results of one run per task."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from transferlib.models import build_model, preprocess
from transferlib.training.stacked import StackedTask, train_stacked


def _pool(n: int = 240, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    images = rng.integers(0, 80, (n, 3, 16, 16), dtype=np.uint8)
    for k in range(4):
        r, c = divmod(k, 2)
        images[labels == k, :, r * 8 : r * 8 + 8, c * 8 : c * 8 + 8] += 150
    return torch.from_numpy(images), labels


def _task(labels: np.ndarray, classes: int, n_train: int, seed: int) -> StackedTask:
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(labels < classes)
    train = rng.choice(rows, n_train, replace=False)
    test = np.setdiff1d(rows, train)[:30]
    return StackedTask(train, labels[train], test, labels[test], classes, seed)


@pytest.fixture
def images_and_tasks():
    images, labels = _pool()
    # different sizes and class counts: the stack pads heads and idles finished tasks
    tasks = [_task(labels, 2, 40, 1), _task(labels, 3, 55, 2), _task(labels, 4, 70, 3)]
    return images, tasks


def _fresh_models(tasks, width=4):
    models = []
    for t, task in enumerate(tasks):
        torch.manual_seed(100 + t)
        models.append(build_model("small_cnn", task.num_classes, width=width))
    return models


def test_stacked_from_scratch_equals_one_run_per_task(images_and_tasks):
    images, tasks = images_and_tasks
    models = _fresh_models(tasks)
    options = {
        "cut": None,
        "epochs": 2,
        "lr": 0.05,
        "batch_size": 8,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "transform": lambda b: preprocess(models[0], b),
        "device": "cpu",
    }
    together = train_stacked(models, images, tasks, **options)
    for model, task, history in zip(models, tasks, together):
        alone = train_stacked([model], images, [task], **options)[0]
        np.testing.assert_allclose(
            history[["train_loss", "test_accuracy"]].to_numpy(),
            alone[["train_loss", "test_accuracy"]].to_numpy(),
            atol=1e-4,
        )
    assert together[2]["test_accuracy"].iloc[-1] > 0.5  # it learned something


def test_stacked_fine_tuning_from_a_cut_with_shared_source_and_new_heads(images_and_tasks):
    images, tasks = images_and_tasks
    torch.manual_seed(0)
    source = build_model("resnet20", 10, width=4).eval()
    with torch.no_grad():
        maps = source.activation(preprocess(source, images), "layer3.1")
    heads = []
    for t, task in enumerate(tasks):
        torch.manual_seed(t)
        heads.append(torch.nn.Linear(source.feature_dim, task.num_classes))
    options = {"cut": "layer3.1", "epochs": 2, "lr": 0.05, "batch_size": 8, "device": "cpu"}
    before = copy.deepcopy(source.state_dict())
    together = train_stacked([source] * 3, maps, tasks, heads=heads, **options)
    for head, task, history in zip(heads, tasks, together):
        alone = train_stacked([source], maps, [task], heads=[head], **options)[0]
        np.testing.assert_allclose(history["train_loss"], alone["train_loss"], atol=1e-4)
    for name, value in source.state_dict().items():  # the source is left untouched
        torch.testing.assert_close(value, before[name])


def test_a_cut_that_mixes_channels_is_refused(images_and_tasks):
    images, tasks = images_and_tasks
    torch.manual_seed(0)
    source = build_model("resnet20", 10, width=4).eval()
    inputs = preprocess(source, images)
    heads = [torch.nn.Linear(source.feature_dim, t.num_classes) for t in tasks]
    with pytest.raises(ValueError, match="mixes channels across tasks"):
        train_stacked(
            [source] * 3,
            inputs,
            tasks,
            heads=heads,
            cut=None,
            epochs=1,
            lr=0.1,
            batch_size=8,
            device="cpu",
        )


def test_bad_arguments_are_rejected(images_and_tasks):
    images, tasks = images_and_tasks
    models = _fresh_models(tasks)
    with pytest.raises(ValueError, match="one model per task"):
        train_stacked(models[:2], images, tasks, cut=None, epochs=1, lr=0.1, batch_size=8)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        train_stacked(models, images, tasks, cut=None, epochs=1, lr=0.1, batch_size=60)
    with pytest.raises(ValueError, match="head 1 has 2 outputs, task 1 has 3 classes"):
        train_stacked(
            models[1:2] * 3,
            images,
            tasks,
            heads=[torch.nn.Linear(16, 2)] * 3,
            cut=None,
            epochs=1,
            lr=0.1,
            batch_size=8,
        )
    with pytest.raises(ValueError, match="codes in"):
        StackedTask(np.arange(3), np.array([0, 1, 5]), np.arange(2), np.array([0, 1]), 2, 0)


def test_class_balanced_loss_weights_each_class_by_its_rarity():
    images, labels = _pool()
    rng = np.random.default_rng(0)
    # two imbalanced tasks of different sizes and ratios, one step of a full batch each
    rows = [
        np.concatenate(
            [
                rng.choice(np.flatnonzero(labels == 0), 40, replace=False),
                rng.choice(np.flatnonzero(labels == 1), 8, replace=False),
            ]
        ),
        np.concatenate(
            [
                rng.choice(np.flatnonzero(labels == 2), 10, replace=False),
                rng.choice(np.flatnonzero(labels == 3), 38, replace=False),
            ]
        ),
    ]
    codes = [np.r_[np.zeros(40, int), np.ones(8, int)], np.r_[np.zeros(10, int), np.ones(38, int)]]
    test = np.arange(20)
    tasks = [
        StackedTask(r, c, test, labels[test] % 2, 2, s) for s, (r, c) in enumerate(zip(rows, codes))
    ]
    torch.manual_seed(0)
    source = build_model("resnet20", 10, width=4).eval()
    with torch.no_grad():
        maps = source.activation(preprocess(source, images), "layer3.1")
    heads = []
    for t in range(2):
        torch.manual_seed(t)
        heads.append(torch.nn.Linear(source.feature_dim, 2))
    options = {"cut": "layer3.1", "epochs": 1, "lr": 0.0, "batch_size": 48, "device": "cpu"}
    plain = train_stacked([source] * 2, maps, tasks, heads=heads, **options)
    balanced = train_stacked([source] * 2, maps, tasks, heads=heads, class_balanced=True, **options)
    for t, (r, c) in enumerate(zip(rows, codes)):
        model = copy.deepcopy(source).train()  # the batch's own statistics, as in training
        with torch.no_grad():
            logits = heads[t](model.features_from("layer3.1", maps[torch.as_tensor(r)]))
        nll = torch.nn.functional.cross_entropy(logits, torch.as_tensor(c), reduction="none")
        weight = torch.as_tensor(len(c) / (2 * np.bincount(c)), dtype=torch.float32)[c]
        assert plain[t]["train_loss"].iloc[0] == pytest.approx(float(nll.mean()), rel=1e-4)
        assert balanced[t]["train_loss"].iloc[0] == pytest.approx(
            float((weight * nll).mean()), rel=1e-4
        )
        assert abs(float((weight * nll).mean()) - float(nll.mean())) > 1e-3
