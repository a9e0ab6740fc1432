import pytest
import torch

from transferlib.cache import ResultStore
from transferlib.models import build_model
from transferlib.training import fine_tune_cached, loop, run_tasks, train_cached

SMALL = {"epochs": 2, "lr": 0.05, "batch_size": 16, "device": "cpu", "progress": False}


@pytest.fixture
def training_calls(monkeypatch):
    """Count real trainings (cache misses) without changing what they do."""
    calls = []
    real_scratch, real_fine = loop.train_from_scratch, loop.fine_tune
    monkeypatch.setattr(loop, "train_from_scratch", lambda *a, **k: calls.append("scratch") or real_scratch(*a, **k))
    monkeypatch.setattr(loop, "fine_tune", lambda *a, **k: calls.append("fine") or real_fine(*a, **k))
    return calls


def test_cache_hit_skips_training(toy_split, training_calls):
    train_data, test_data = toy_split
    first = train_cached("small_cnn", train_data, test_data, **SMALL)
    second = train_cached("small_cnn", train_data, test_data, **SMALL)
    assert training_calls == ["scratch"]
    assert not first.from_cache and second.from_cache
    assert first.key == second.key
    assert second.history.drop(columns="seconds").equals(first.history.drop(columns="seconds"))
    for name, value in first.model.state_dict().items():
        torch.testing.assert_close(second.model.state_dict()[name], value, rtol=0, atol=0)
    # any change of configuration is a miss
    train_cached("small_cnn", train_data, test_data, **{**SMALL, "lr": 0.04})
    train_cached("small_cnn", train_data, test_data, **SMALL, seed=1)
    train_cached("small_cnn", train_data, test_data, **SMALL, model_kwargs={"width": 8})
    train_cached("small_cnn", test_data, train_data, **SMALL)
    assert len(training_calls) == 5


def test_fine_tune_cached(toy_split, training_calls):
    train_data, test_data = toy_split
    source = train_cached("small_cnn", train_data, None, **SMALL)
    tuned = [fine_tune_cached(source, test_data, None, **SMALL) for _ in range(2)]
    assert training_calls == ["scratch", "fine"]
    assert tuned[1].from_cache and tuned[1].key == tuned[0].key
    torch.testing.assert_close(tuned[1].model.head.weight, tuned[0].model.head.weight)
    torch.manual_seed(0)
    other = ("small_cnn-random-init", build_model("small_cnn", num_classes=3))
    fine_tune_cached(other, test_data, None, **SMALL)
    assert training_calls[-1] == "fine" and len(training_calls) == 3


def test_interrupted_sweep_resumes_with_only_the_missing_tasks(make_task, tmp_path, training_calls):
    tasks = [{"task": f"t{i}", "seed": i} for i in range(4)]
    store_path = tmp_path / "results.csv"

    def run(task, fail_at=None):
        if task["task"] == fail_at:
            raise KeyboardInterrupt  # simulated interruption in the middle of the sweep
        data = make_task(32, 2, seed=task["seed"])
        result = train_cached("small_cnn", data, data, **SMALL)
        return {"accuracy": result.final_test_accuracy}

    with pytest.raises(KeyboardInterrupt):
        run_tasks(ResultStore(store_path, ["task"]), tasks, lambda t: run(t, fail_at="t2"), progress=False)
    assert len(training_calls) == 2
    table = run_tasks(ResultStore(store_path, ["task"]), tasks, run, progress=False)
    assert len(training_calls) == 4  # only t2 and t3 were trained on the second run
    assert sorted(table["task"]) == ["t0", "t1", "t2", "t3"]
    run_tasks(ResultStore(store_path, ["task"]), tasks, run, progress=False)
    assert len(training_calls) == 4
