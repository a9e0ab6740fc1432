"""The resumable sweep every experiment runs, and the result stores it writes.

A sweep is a list of *items* (usually :class:`~transferlib.data.TaskSpec`\\ s, or a source with its
targets); each item yields one or more rows, identified by key columns. :func:`run_sweep` computes
only the items whose rows are missing from a :class:`~transferlib.cache.ResultStore` and appends
each item's rows as soon as it finishes, so an interrupted sweep (Ctrl-C, kill -9) loses at most
the items in flight and a rerun computes only what is missing.

The computation can run anywhere a :class:`concurrent.futures.Executor` runs it: in-process (the
default), a :class:`~concurrent.futures.ProcessPoolExecutor`, or a cluster -- ``dask.distributed``'s
``Client.get_executor()`` or Ray's executor -- with the cache folder on a shared filesystem. Only
the driver (the process calling :func:`run_sweep`) writes the store. Several drivers on one store
split the work: each takes a per-item lock before computing and skips items another driver holds,
then waits for those at the end.

:func:`result_store` names a store by everything its rows depend on, the code version of the
experiment module included, so a fix to the code that computes a row never meets rows computed
before it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any, TypeVar

import pandas as pd

from transferlib._progress import tqdm
from transferlib.cache import ResultStore, cache_root, config_key
from transferlib.config import RunParams
from transferlib.provenance import code_version

__all__ = ["local_executor", "result_store", "run_sweep", "task_key"]

Item = TypeVar("Item")
Rows = Sequence[Mapping[str, Any]]


def result_store(
    run: RunParams, module: str, name: str, key_columns: Sequence[str], config: Any
) -> ResultStore:
    """The store of one sweep of one chapter.

    Parameters
    ----------
    run : RunParams
        Its dataset, data root and seed are part of the store's identity; its device and cache
        folder are not (a row computed on a GPU is the same row).
    module : str
        The experiment module (``"transferlib.experiments.nce"``): its code version, and that of
        everything it imports, is part of the identity.
    name : str
        The sweep (``"attribute-transfer"``); also the readable part of the file name.
    key_columns : sequence of str
    config : any
        The chapter's preset (or whatever else determines the rows), hashed into the identity.
    """
    identity = {
        "dataset": run.dataset,
        "data_root": run.data_root,
        "seed": run.seed,
        "config": config,
        "code": code_version(module),
    }
    chapter = module.rsplit(".", 1)[-1]
    path = cache_root(run.cache_dir) / "results" / chapter / f"{name}-{config_key(identity)}.csv"
    return ResultStore(path, key_columns, scale=run.scale)


#: Thread pools of a worker's native libraries, set in its environment before it imports any:
#: NumPy and SciPy each bundle an OpenBLAS and scikit-learn uses OpenMP, each with a thread per
#: core by default; a limit set at run time misses a library loaded after it.
_ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


#: How often a worker checks that its driver is still alive (seconds).
_PARENT_POLL = 1.0


def _exit_with_parent(parent: int) -> None:
    """End this worker once the driver that started it is gone (it is then re-parented). A
    driver killed by SIGTERM or SIGKILL (a kernel shut down) cannot stop its pool, whose workers
    would otherwise wait for work forever, each holding its memory."""
    while os.getppid() == parent:
        time.sleep(_PARENT_POLL)
    os._exit(1)


def _init_worker(parent: int) -> None:
    """A sweep worker computes on one torch thread (and one BLAS/OpenMP thread, see
    :class:`_WorkerProcess`): two workers on two cores, not four spinning threads. It exits
    when its driver ``parent`` does."""
    import torch

    torch.set_num_threads(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


class _WorkerProcess(SpawnProcess):
    """A spawned worker that starts with one-thread BLAS and OpenMP pools (:data:`_ONE_THREAD`
    in its environment) and with SIGINT ignored (Ctrl-C is the driver's to handle).

    A notebook's kernel is interrupted and shut down through SIGINT to its process group. A
    worker still starting up (importing torch) would die of it with a KeyboardInterrupt
    traceback in the build log. A signal ignored at ``exec`` stays ignored, and Python then
    installs no KeyboardInterrupt handler, so the worker is immune from its first instruction.
    """

    def start(self) -> None:
        saved = {name: os.environ.get(name) for name in _ONE_THREAD}
        os.environ.update(_ONE_THREAD)
        try:
            if threading.current_thread() is not threading.main_thread():
                return super().start()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                super().start()
            finally:
                signal.signal(signal.SIGINT, previous)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class _WorkerContext(SpawnContext):
    Process = _WorkerProcess


def local_executor(run: RunParams, workers: int | None = None) -> Executor | None:
    """Worker processes for :func:`run_sweep` on this machine's CPU cores, or None.

    Small networks on a CPU use two cores better as two single-threaded processes, each training
    its own network, than as one process with two threads. Returns None (compute in this
    process) when ``run.device`` is not the CPU (one accelerator is best driven by one process)
    or when only one core is available.

    Parameters
    ----------
    run : RunParams
    workers : int, optional
        Number of processes (default: the cores this process may use).
    """
    from transferlib.training import resolve_device

    if resolve_device(run.device).type != "cpu":
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if workers is None:
        workers = cores or 1
    if workers < 1:
        raise ValueError(f"workers must be positive, got {workers}")
    if workers < 2:
        return None
    return ProcessPoolExecutor(
        workers, mp_context=_WorkerContext(), initializer=_init_worker, initargs=(os.getpid(),)
    )


def task_key(spec: Any) -> list[dict[str, Any]]:
    """Default keys of an item: ``[{"task": spec.name}]`` (one row per TaskSpec)."""
    return [{"task": spec.name}]


def _key_of(row: Mapping[str, Any], columns: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(row[c]) for c in columns)


def _try_lock(store: ResultStore, item_keys: Rows, blocking: bool) -> Any | None:
    """The item's lock if this driver got it (waiting for it when ``blocking``), else None."""
    lock = store.task_lock(item_keys[0])
    try:
        lock.acquire(timeout=-1 if blocking else 0)
    except TimeoutError:
        return None
    return lock


def run_sweep(
    store: ResultStore,
    items: Sequence[Item],
    compute: Callable[[Item], Rows | Mapping[str, Any]],
    *,
    keys: Callable[[Item], Rows] = task_key,
    executor: Executor | None = None,
    progress: bool = True,
    desc: str = "sweep",
) -> pd.DataFrame:
    """Compute the rows of every item not yet in ``store``; return the rows of all ``items``.

    Parameters
    ----------
    store : ResultStore
    items : sequence
        What to compute, e.g. TaskSpecs. Items and ``compute`` must be picklable when
        ``executor`` runs in other processes (use module-level functions and
        :func:`functools.partial`).
    compute : callable
        ``compute(item)`` returns the item's row (a mapping) or rows (a sequence of mappings);
        their key columns must be exactly ``keys(item)``.
    keys : callable
        ``keys(item)`` -> the key-column mappings of the item's rows (default: one row keyed by
        ``spec.name`` in column ``task``).
    executor : concurrent.futures.Executor, optional
        Where ``compute`` runs; default in this process, one item after the other.
    progress : bool
        Progress bar over items (terminal runs; the book builds with ``TQDM_DISABLE``).
    desc : str
        Label of the progress bar.

    Returns
    -------
    DataFrame
        The rows of ``items`` in item order (rows of other items in the store are left out).

    Raises
    ------
    ValueError
        If ``compute`` returns rows whose keys differ from ``keys(item)``.
    """
    columns = store.key_columns
    expected = [[_key_of(k, columns) for k in keys(item)] for item in items]
    pending = [i for i, item_keys in enumerate(expected) if not _done(store, item_keys)]
    bar = tqdm(total=len(items), initial=len(items) - len(pending), desc=desc, disable=not progress)

    def finish(index: int, rows: Rows | Mapping[str, Any]) -> None:
        rows = [rows] if isinstance(rows, Mapping) else list(rows)
        got = [_key_of(r, columns) for r in rows]
        if sorted(got) != sorted(expected[index]):
            raise ValueError(
                f"compute returned rows keyed {got} for an item keyed {expected[index]}"
            )
        for row in rows:
            store.append(row)
        bar.update()

    def claim(index: int, blocking: bool) -> Any | None:
        """Lock the item; None if another driver holds it or already finished it."""
        lock = _try_lock(store, keys(items[index]), blocking)
        if lock is not None:
            store.refresh()
            if _done(store, expected[index]):
                lock.release()
                bar.update()
                return None
        return lock

    deferred, running = [], {}
    try:
        for index in pending:
            lock = claim(index, blocking=False)
            if lock is None:
                if not _done(store, expected[index]):
                    deferred.append(index)  # another driver is computing it
                continue
            if executor is None:
                try:
                    finish(index, compute(items[index]))
                finally:
                    lock.release()
            else:
                running[executor.submit(compute, items[index])] = (index, lock)
        for future in _completed(running):
            index, lock = running.pop(future)
            try:
                finish(index, future.result())
            finally:
                lock.release()
        for index in deferred:  # wait for the other driver, then compute what it left
            lock = claim(index, blocking=True)
            if lock is not None:
                try:
                    finish(index, compute(items[index]))
                finally:
                    lock.release()
    finally:
        for _, lock in running.values():  # interrupted: give back the items in flight
            lock.release()
        bar.close()
    return _rows_of(store, [k for item_keys in expected for k in item_keys])


def _done(store: ResultStore, item_keys: list[tuple[str, ...]]) -> bool:
    stored = store.completed_keys()
    return all(k in stored for k in item_keys)


def _completed(running: dict[Future, Any]) -> Iterator[Future]:
    return as_completed(list(running)) if running else iter(())


def _rows_of(store: ResultStore, wanted: list[tuple[str, ...]]) -> pd.DataFrame:
    table = store.table()
    if table.empty:
        return table
    position = {key: i for i, key in enumerate(wanted)}
    order = table[list(store.key_columns)].astype(str).apply(tuple, axis=1).map(position)
    table = table[order.notna()].assign(_order=order).sort_values("_order", kind="stable")
    return table.drop(columns="_order").reset_index(drop=True)
