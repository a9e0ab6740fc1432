"""The resumable sweep: what it computes, what it keeps, and who computes what."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from transferlib.cache import ResultStore
from transferlib.config import RunParams
from transferlib.experiments.sweep import result_store, run_sweep

ITEMS = [f"item-{i}" for i in range(6)]


def square(item: str) -> dict:
    k = int(item.split("-")[1])
    return {"task": item, "value": k * k, "half": k / 2}


def keys(item: str) -> list[dict]:
    return [{"task": item}]


def test_sweep_computes_each_item_once_and_returns_item_order(tmp_path):
    calls = []

    def compute(item):
        calls.append(item)
        return square(item)

    store = ResultStore(tmp_path / "rows.csv", ["task"])
    table = run_sweep(store, ITEMS[::-1], compute, keys=keys, progress=False)
    assert list(table["task"]) == ITEMS[::-1]
    assert list(table["value"]) == [int(i.split("-")[1]) ** 2 for i in ITEMS[::-1]]
    again = run_sweep(
        ResultStore(tmp_path / "rows.csv", ["task"]), ITEMS[:3], compute, keys=keys, progress=False
    )
    assert calls == ITEMS[::-1]  # nothing recomputed
    assert list(again["task"]) == ITEMS[:3]  # only the rows asked for


def test_interrupted_sweep_keeps_finished_items_and_resumes_with_the_rest(tmp_path):
    calls = []

    def compute(item, fail_at=None):
        if item == fail_at:
            raise KeyboardInterrupt
        calls.append(item)
        return square(item)

    path = tmp_path / "rows.csv"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(
            ResultStore(path, ["task"]),
            ITEMS,
            lambda i: compute(i, "item-3"),
            keys=keys,
            progress=False,
        )
    assert calls == ITEMS[:3]
    table = run_sweep(ResultStore(path, ["task"]), ITEMS, compute, keys=keys, progress=False)
    assert calls == ITEMS[:3] + ITEMS[3:]
    reference = run_sweep(
        ResultStore(tmp_path / "straight.csv", ["task"]), ITEMS, square, keys=keys, progress=False
    )
    pd.testing.assert_frame_equal(table, reference)


def test_items_with_several_rows_and_wrong_keys(tmp_path):
    store = ResultStore(tmp_path / "pairs.csv", ["source", "target"])

    def pairs(source):
        return [{"source": source, "target": t} for t in "xy"]

    def compute(source):
        return [{"source": source, "target": t, "score": f"{source}{t}"} for t in "xy"]

    table = run_sweep(store, ["a", "b"], compute, keys=pairs, progress=False)
    assert list(zip(table["source"], table["target"])) == [
        ("a", "x"),
        ("a", "y"),
        ("b", "x"),
        ("b", "y"),
    ]
    with pytest.raises(ValueError, match="keyed"):
        run_sweep(store, ["c"], lambda s: compute("d"), keys=pairs, progress=False)


def test_result_store_identity_follows_config_code_and_run_but_not_device(tmp_path):
    run = RunParams(scale="smoke", cache_dir=str(tmp_path))
    module = "transferlib.experiments.nce"
    path = result_store(run, module, "rows", ["task"], {"n": 1}).path
    assert (
        result_store(
            RunParams(scale="smoke", cache_dir=str(tmp_path), device="cpu"),
            module,
            "rows",
            ["task"],
            {"n": 1},
        ).path
        == path
    )
    assert result_store(run, module, "rows", ["task"], {"n": 2}).path != path
    assert (
        result_store(
            RunParams(scale="smoke", cache_dir=str(tmp_path), seed=1),
            module,
            "rows",
            ["task"],
            {"n": 1},
        ).path
        != path
    )
    assert (
        result_store(run, "transferlib.experiments.sweep", "rows", ["task"], {"n": 1}).path != path
    )


def test_a_change_of_experiment_code_starts_a_new_store(tmp_path, monkeypatch):
    from transferlib.experiments import sweep

    run = RunParams(scale="smoke", cache_dir=str(tmp_path))
    store = result_store(run, "transferlib.experiments.nce", "rows", ["task"], {})
    run_sweep(store, ITEMS, square, keys=keys, progress=False)
    monkeypatch.setattr(sweep, "code_version", lambda *modules: "fixed code")
    fresh = result_store(run, "transferlib.experiments.nce", "rows", ["task"], {})
    assert fresh.path != store.path and len(fresh) == 0


_DRIVER = """
import sys, time
from pathlib import Path
from transferlib.cache import ResultStore
from transferlib.experiments.sweep import run_sweep

store_path, log_dir, delay = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])

def compute(item):
    (log_dir / f"{item}.{__import__('os').getpid()}").touch()
    time.sleep(delay)
    return {"task": item, "value": int(item.split("-")[1]) ** 2}

items = [f"item-{i}" for i in range(int(sys.argv[4]))]
run_sweep(ResultStore(store_path, ["task"]), items, compute, keys=lambda i: [{"task": i}],
          progress=False)
"""


def _driver(tmp_path: Path, store: Path, logs: Path, delay: float, n: int) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(_DRIVER))
    return subprocess.Popen(
        [sys.executable, str(script), str(store), str(logs), str(delay), str(n)],
        env={**os.environ, "TQDM_DISABLE": "1"},
    )


def test_two_drivers_on_one_store_split_the_work(tmp_path):
    store, logs = tmp_path / "rows.csv", tmp_path / "logs"
    logs.mkdir()
    drivers = [_driver(tmp_path, store, logs, 0.3, 8) for _ in range(2)]
    assert [d.wait(timeout=120) for d in drivers] == [0, 0]
    computed = sorted(p.name.split(".")[0] for p in logs.iterdir())
    assert computed == sorted(f"item-{i}" for i in range(8))  # each item exactly once
    assert len({p.suffix for p in logs.iterdir()}) == 2  # both drivers did some of it
    table = ResultStore(store, ["task"]).table()
    assert sorted(table["task"]) == computed and len(table) == 8


def test_kill_9_of_the_driver_loses_only_the_item_in_flight(tmp_path):
    store, logs = tmp_path / "rows.csv", tmp_path / "logs"
    logs.mkdir()
    driver = _driver(tmp_path, store, logs, 0.2, 12)
    deadline = time.time() + 60
    while len(ResultStore(store, ["task"])) < 4 and time.time() < deadline:
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    finished = len(ResultStore(store, ["task"]))
    assert 4 <= finished < 12
    started = len(list(logs.iterdir()))
    assert started - finished <= 1  # at most the item in flight is lost

    resumed = _driver(tmp_path, store, logs, 0.0, 12)
    assert resumed.wait(timeout=60) == 0
    assert len(list(logs.iterdir())) == 12 + (started - finished)  # only missing items ran
    table = ResultStore(store, ["task"]).table().sort_values("task").reset_index(drop=True)
    expected = pd.DataFrame(
        {"task": [f"item-{i}" for i in range(12)], "value": [i * i for i in range(12)]}
    )
    pd.testing.assert_frame_equal(table, expected.sort_values("task").reset_index(drop=True))


def _torch_threads(item: str) -> dict:
    import torch

    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    return {
        "task": item,
        "threads": torch.get_num_threads(),
        "pid": os.getpid(),
        "ignored": ignored,
    }


@pytest.mark.slow
def test_local_executor_runs_items_in_single_threaded_worker_processes(tmp_path):
    from transferlib.config import run_parameters
    from transferlib.experiments.sweep import local_executor

    run = run_parameters(device="cpu", cache_dir=str(tmp_path))
    store = ResultStore(tmp_path / "rows.csv", ["task"])
    handler = signal.getsignal(signal.SIGINT)
    with local_executor(run, 2) as pool:
        table = run_sweep(store, ITEMS, _torch_threads, keys=keys, executor=pool, progress=False)
    assert list(table["task"]) == ITEMS
    assert (table["threads"] == 1).all()
    # workers start with SIGINT ignored (a kernel shutdown signals the whole process group),
    # and the driver keeps its own handler
    assert table["ignored"].astype(str).eq("True").all()
    assert signal.getsignal(signal.SIGINT) == handler
    assert os.getpid() not in set(table["pid"])
    with pytest.raises(ValueError, match="workers"):
        local_executor(run, 0)


def test_scores_move_numeric_inputs_to_the_device_and_leave_string_labels() -> None:
    import numpy as np
    import torch

    from transferlib.experiments.scoring import _on_device

    moved = _on_device(np.arange(4.0), "cpu")
    assert isinstance(moved, torch.Tensor) and moved.dtype == torch.float64
    text = np.array(["a", "b"])
    assert _on_device(text, "cpu") is text
    assert _on_device(None, "cpu") is None


def _thread_counts(_: int) -> tuple[int, list[int]]:
    import scipy.linalg  # noqa: F401  (SciPy's own OpenBLAS, loaded after the worker started)
    import sklearn.mixture  # noqa: F401  (OpenMP)
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()]


def test_local_executor_workers_compute_on_one_thread(tmp_path):
    from transferlib.config import RunParams
    from transferlib.experiments.sweep import local_executor

    with local_executor(RunParams(device="cpu", cache_dir=str(tmp_path)), 2) as executor:
        torch_threads, blas_threads = executor.submit(_thread_counts, 0).result()
    assert torch_threads == 1
    assert len(blas_threads) >= 2 and set(blas_threads) == {1}  # NumPy's and SciPy's BLAS


_POOL_DRIVER = """
import os, sys, time
from transferlib.config import RunParams
from transferlib.experiments.sweep import local_executor

if __name__ == "__main__":  # workers are spawned: they import this file
    pool = local_executor(RunParams(device="cpu", cache_dir=sys.argv[1]), 2)
    pids = {pool.submit(os.getpid).result() for _ in range(8)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead, waiting to be reaped
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_local_executor_workers_exit_when_their_driver_is_killed(tmp_path, sig):
    script = tmp_path / "pool_driver.py"
    script.write_text(_POOL_DRIVER)
    driver = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    workers = [int(pid) for pid in driver.stdout.readline().split()]
    assert workers and all(_alive(pid) for pid in workers)
    driver.send_signal(sig)  # a kernel shut down: the pool is never told
    driver.wait(timeout=30)
    deadline = time.time() + 20
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)
