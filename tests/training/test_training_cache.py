import pytest
import torch

from transferlib.models import build_model
from transferlib.training import cached, fine_tune_cached, train_cached

SMALL = {"epochs": 2, "lr": 0.05, "batch_size": 16, "device": "cpu", "progress": False}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLIB_CACHE", str(tmp_path / "cache"))


def test_cache_hit_skips_training_and_returns_the_same_network(toy_split):
    train_data, test_data = toy_split
    first = train_cached("small_cnn", train_data, test_data, **SMALL)
    second = train_cached("small_cnn", train_data, test_data, **SMALL)
    assert not first.from_cache and second.from_cache
    assert first.key == second.key
    assert second.history.drop(columns="seconds").equals(first.history.drop(columns="seconds"))
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[name], value, rtol=0, atol=0)


@pytest.mark.parametrize(
    "change",
    [{"lr": 0.04}, {"seed": 1}, {"model_kwargs": {"width": 8}}, {"momentum": 0.5}],
    ids=["lr", "seed", "width", "train-option"],
)
def test_any_change_of_configuration_retrains(toy_split, change):
    train_data, test_data = toy_split
    base = train_cached("small_cnn", train_data, test_data, **SMALL)
    other = train_cached("small_cnn", train_data, test_data, **{**SMALL, **change})
    assert not other.from_cache and other.key != base.key
    swapped = train_cached("small_cnn", test_data, train_data, **SMALL)
    assert not swapped.from_cache


def test_progress_label_is_not_part_of_the_key(toy_split):
    train_data, test_data = toy_split
    first = train_cached("small_cnn", train_data, test_data, desc="one", **SMALL)
    second = train_cached("small_cnn", train_data, test_data, desc="two", **SMALL)
    assert second.from_cache and second.key == first.key


def test_a_change_of_training_code_retrains(toy_split, monkeypatch):
    train_data, test_data = toy_split
    before = train_cached("small_cnn", train_data, test_data, **SMALL)
    monkeypatch.setattr(cached, "code_version", lambda *modules: "changed training code")
    after = train_cached("small_cnn", train_data, test_data, **SMALL)
    assert not after.from_cache and after.key != before.key


def test_fine_tune_cached(toy_split):
    train_data, test_data = toy_split
    source = train_cached("small_cnn", train_data, None, **SMALL)
    tuned = [fine_tune_cached(source, test_data, None, **SMALL) for _ in range(2)]
    assert not tuned[0].from_cache and tuned[1].from_cache and tuned[1].key == tuned[0].key
    torch.testing.assert_close(tuned[1].model.head.weight, tuned[0].model.head.weight)
    torch.manual_seed(0)
    other = fine_tune_cached(
        ("small_cnn-random-init", build_model("small_cnn", num_classes=3)), test_data, None, **SMALL
    )
    assert not other.from_cache and other.key != tuned[0].key
