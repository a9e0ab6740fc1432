"""Networks and their cached outputs: keys that cannot serve a stale result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from transferlib.config import RunParams
from transferlib.data import attribute_tasks
from transferlib.experiments import sources
from transferlib.experiments.presets import DataSpec, TrainingSpec
from transferlib.experiments.sources import (
    Network,
    majority_accuracy,
    network_outputs,
    pretrained_network,
    run_dataset,
    train_network,
)
from transferlib.training import cached, extract, loop

TRAINING = TrainingSpec(model="small_cnn", epochs=1, lr=0.05, batch_size=64, width=8)


@pytest.fixture
def run(tmp_path):
    torch.set_num_threads(1)
    return RunParams(scale="smoke", device="cpu", cache_dir=str(tmp_path))


@pytest.fixture
def task(run):
    dataset = run_dataset(run, DataSpec(n_images=660))
    return dataset, attribute_tasks(dataset, ["uppercase"])[0]


def _features_files(run):
    from transferlib.cache import cache_root

    return sorted((cache_root(run.cache_dir) / "features").glob("*.npy"))


def test_run_dataset_renders_into_the_run_cache(run):
    dataset = run_dataset(run, DataSpec(n_images=660))
    assert dataset.metadata["cache_path"].startswith(run.cache_dir)


def test_outputs_are_cached_per_output(run, task):
    dataset, spec = task
    network = train_network(run, dataset, spec, TRAINING, progress=False)
    images = dataset.images[spec.test_indices]
    probs = network_outputs(run, network, images, ("probs",))["probs"]
    assert len(_features_files(run)) == 1
    both = network_outputs(run, network, images, ("probs", "features"))
    assert len(_features_files(run)) == 2  # only the features were added
    np.testing.assert_array_equal(both["probs"], probs)
    fresh = extract(network.model, images, outputs=("probs", "features"), device="cpu")
    np.testing.assert_allclose(both["features"], fresh["features"], rtol=1e-5, atol=1e-6)


def test_new_training_code_gives_new_features_not_stale_ones(run, task, monkeypatch):
    """Regression: a retrained network must never be served the old network's features."""
    dataset, spec = task
    old = train_network(run, dataset, spec, TRAINING, progress=False)
    images = dataset.images[spec.test_indices]
    old_features = network_outputs(run, old, images, ("features",))["features"]

    # A change to the training code: a new code version, and training that ends elsewhere.
    real_train = loop.train

    def changed_train(model, *args, **kwargs):
        result = real_train(model, *args, **kwargs)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(1.5)
        return result

    monkeypatch.setattr(loop, "train", changed_train)
    monkeypatch.setattr(cached, "code_version", lambda *modules: "changed training code")
    new = train_network(run, dataset, spec, TRAINING, progress=False)
    assert not new.from_cache and new.key != old.key
    new_features = network_outputs(run, new, images, ("features",))["features"]
    expected = extract(new.model, images, outputs=("features",), device="cpu")["features"]
    np.testing.assert_allclose(new_features, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(new_features, old_features)


def test_new_extraction_code_recomputes_outputs(run, task, monkeypatch):
    dataset, spec = task
    network = train_network(run, dataset, spec, TRAINING, progress=False)
    network_outputs(run, network, dataset.images[:20], ("probs",))
    monkeypatch.setattr(sources, "code_version", lambda *modules: "changed extraction code")
    network_outputs(run, network, dataset.images[:20], ("probs",))
    assert len(_features_files(run)) == 2


def test_networks_report_their_baseline(run, task):
    dataset, spec = task
    network = train_network(run, dataset, spec, TRAINING, progress=False)
    labels = dataset.column("uppercase")
    expected = majority_accuracy(labels[spec.train_indices], labels[spec.test_indices])
    assert network.majority_accuracy == pytest.approx(expected)
    row = network.summary()
    assert row["test_accuracy"] == pytest.approx(network.history["test_accuracy"].iloc[-1])
    assert row["beats_baseline"] == (row["test_accuracy"] > expected + network.baseline_margin())


def test_baseline_rule():
    assert majority_accuracy([0, 1, 1], [1, 1, 0, 0]) == 0.5
    assert majority_accuracy([0, 1], [0, 0, 1]) == pytest.approx(2 / 3)  # ties: lowest label
    at_chance = Network("x", "source", "small_cnn", "k", None, majority_accuracy=0.5, n_test=400)
    assert at_chance.baseline_margin() == pytest.approx(0.05)
    at_chance.history = __import__("pandas").DataFrame({"test_accuracy": [0.54]})
    assert not at_chance.beats_baseline()
    at_chance.history["test_accuracy"] = [0.56]
    assert at_chance.beats_baseline()


def test_pretrained_network_key_follows_weights_and_input_size():
    small = pretrained_network("efficientnet_lite0", input_size=32, device="cpu")
    again = pretrained_network("efficientnet_lite0", input_size=32, device="cpu")
    other = pretrained_network("efficientnet_lite0", input_size=64, device="cpu")
    assert small.key == again.key != other.key
    assert small.model.input_size == 32
    with pytest.raises(ValueError, match="no packaged"):
        pretrained_network("resnet18")
