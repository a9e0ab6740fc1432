"""Several processes sharing one empty cache: every artifact is built once, tables stay correct.

Each process is started with ``multiprocessing``'s spawn method (a fresh interpreter, as a second
terminal would be) and runs the same small real workload: render a Glyphs set, train a
``small_cnn`` for one epoch per task with :func:`transferlib.training.train_cached`, extract its
test-set probabilities (cached with :func:`transferlib.experiments.sources.network_outputs`), append one row per task to one :class:`~transferlib.cache.ResultStore`.
The processes wait at a barrier so that they really start together.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

TASKS = ("uppercase", "bold", "dark_background")
N_IMAGES = 660  # six per character: 550 training images (200 used), 110 test images


def workload(cache_dir: str) -> dict[str, Any]:
    """Run the shared workload once; report what this process built and the table it sees."""
    import importlib

    import torch

    from transferlib.cache import ResultStore
    from transferlib.config import RunParams
    from transferlib.data import as_task, load_glyphs
    from transferlib.experiments.sources import Network, network_outputs
    from transferlib.training import train_cached

    torch.set_num_threads(1)
    extract_module = importlib.import_module("transferlib.training.extract")
    extractions = []
    real_outputs = extract_module.batched_outputs

    def counting_outputs(*args: Any, **kwargs: Any) -> Any:
        extractions.append(1)
        return real_outputs(*args, **kwargs)

    extract_module.batched_outputs = counting_outputs
    data = load_glyphs(n_images=N_IMAGES, image_size=16, seed=0, cache_dir=cache_dir)
    store = ResultStore(Path(cache_dir) / "results" / "rows.csv", ["task"])
    trained = appended = 0
    for task in TASKS:
        train, test = as_task(data, task, max_train=200)
        result = train_cached(
            "small_cnn",
            train,
            test,
            epochs=1,
            lr=0.05,
            batch_size=32,
            device="cpu",
            cache_dir=cache_dir,
            progress=False,
        )
        network = Network(task, "source", "small_cnn", str(result.key), result.model)
        run = RunParams(device="cpu", cache_dir=cache_dir)
        probs = network_outputs(run, network, test.images, ("probs",))
        trained += not result.from_cache
        row = {
            "task": task,
            "accuracy": result.final_test_accuracy,
            "p1": probs["probs"][:, 1].mean(),
        }
        appended += store.append(row)
    return {
        "rendered": int(not data.metadata["from_cache"]),
        "trained": trained,
        "extracted": len(extractions),
        "appended": appended,
        "table": store.table().to_csv(index=False),
    }


def _child(cache_dir: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=120)
        results.put(workload(cache_dir))
    except BaseException:  # noqa: BLE001 (the parent reports any failure of a child)
        results.put({"error": traceback.format_exc()})


def run_processes(cache_dir: Path, n: int) -> list[dict[str, Any]]:
    """Run the workload in ``n`` spawned processes started together; return their reports."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(n), context.Queue()
    processes = [
        context.Process(target=_child, args=(str(cache_dir), barrier, results)) for _ in range(n)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    errors = [r["error"] for r in reports if "error" in r]
    assert not errors, errors[0]
    return reports


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The table of one process alone on its own empty cache."""
    (report,) = run_processes(tmp_path_factory.mktemp("reference"), 1)
    assert (report["rendered"], report["trained"], report["extracted"]) == (1, 3, 3)
    return pd.read_csv(io.StringIO(report["table"]))


def _sorted(table_csv: str) -> pd.DataFrame:
    table = pd.read_csv(io.StringIO(table_csv))
    return table.sort_values("task").reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("n", [2, 4])
def test_processes_on_one_empty_cache_build_everything_once(
    n: int, tmp_path: Path, reference: pd.DataFrame
) -> None:
    cache_dir = tmp_path / "cache"
    reports = run_processes(cache_dir, n)
    # Each artifact was built by exactly one process; the others waited and loaded it.
    assert sum(r["rendered"] for r in reports) == 1
    assert sum(r["trained"] for r in reports) == len(TASKS)
    assert sum(r["extracted"] for r in reports) == len(TASKS)
    assert sum(r["appended"] for r in reports) == len(TASKS)
    # Every process sees the same table: one header, one row per task, the reference numbers.
    assert len({r["table"] for r in reports}) == 1
    lines = (cache_dir / "results" / "rows.csv").read_text().splitlines()
    assert len(lines) == 1 + len(TASKS) and lines[0].startswith("task,")
    expected = reference.sort_values("task").reset_index(drop=True)
    pd.testing.assert_frame_equal(_sorted(reports[0]["table"]), expected)
    assert not (cache_dir / "quarantine").exists()

    # A later run alone reuses everything.
    (later,) = run_processes(cache_dir, 1)
    assert (later["rendered"], later["trained"], later["extracted"], later["appended"]) == (
        0,
        0,
        0,
        0,
    )
    assert later["table"] == reports[0]["table"]


def sweep(store_path: str, log_dir: str) -> None:
    """:func:`~transferlib.experiments.sweep.run_sweep` over six tasks, logging who computed each."""
    from transferlib.cache import ResultStore
    from transferlib.experiments.sweep import run_sweep

    def run(task: dict[str, Any]) -> dict[str, Any]:
        (Path(log_dir) / f"{task['task']}-{os.getpid()}").touch()
        time.sleep(0.2)
        return {"task": task["task"], "square": task["n"] ** 2}

    tasks = [{"task": f"t{n}", "n": n} for n in range(6)]
    store = ResultStore(store_path, ["task"])
    run_sweep(store, tasks, run, keys=lambda task: [{"task": task["task"]}], progress=False)


def _sweep_child(store_path: str, log_dir: str, barrier: Any, results: Any) -> None:
    try:
        barrier.wait(timeout=120)
        sweep(store_path, log_dir)
        results.put("ok")
    except BaseException:  # noqa: BLE001 (the parent reports any failure of a child)
        results.put(traceback.format_exc())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_processes_running_one_sweep_compute_each_task_once(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    store_path, log_dir = tmp_path / "sweep.csv", tmp_path / "log"
    log_dir.mkdir()
    processes = [
        context.Process(target=_sweep_child, args=(str(store_path), str(log_dir), barrier, results))
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=240) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert outcomes == ["ok", "ok"], outcomes
    computed = sorted(p.name.split("-")[0] for p in log_dir.iterdir())
    assert computed == [f"t{n}" for n in range(6)]  # each task once, by one of the two
    table = pd.read_csv(store_path).drop(columns="checksum")
    assert sorted(table["task"]) == [f"t{n}" for n in range(6)]
    assert (table["square"] == table["task"].str[1:].astype(int) ** 2).all()
