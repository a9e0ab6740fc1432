"""Speed and quality of head re-training: ``retrain_heads`` against scikit-learn, side by side.

The problem is the one the LEEP and NCE chapters solve many times: linear heads on frozen
EfficientNet-Lite0 features (1280-d, book-scale Glyphs at 64 px) for many tasks at once.

* **Logistic heads**: 50 tasks on the same 5,000 training and 1,000 test images: the 30 binary
  attributes, the 8 multi-class factors (3 to 21 classes) and 12 random groupings of the
  characters (2 to 12 classes). Compared, in one process with the same threads:
  a loop of scikit-learn's ``LogisticRegression()`` (its defaults: lbfgs, ``tol=1e-4``,
  ``max_iter=100``) on standardised features; ``retrain_heads(method="logistic")`` with the same
  defaults; the same with ``ftol=3e-3`` (a task stops once an iteration lowers its objective by
  at most 3e-3 times max(objective, 1)); and, with ``--converged``, both solved to a tight
  tolerance (the exact optimum).
  Quality: mean test accuracy and mean test log-likelihood over the tasks (scikit-learn's
  log-probabilities computed stably from its decision function).
* **SGD heads** (LEEP's protocol: lr 0.01, batch 10): 60 random subsets of 2 to 100 characters
  with all their training images (the §5.1 tasks), all tasks batched in ``retrain_heads`` against
  one call per task; reported per epoch.

Usage::

    nice .venv/bin/python benchmarks/bench_heads.py               # 2 threads
    nice .venv/bin/python benchmarks/bench_heads.py --threads 1 --converged
    .venv/bin/python benchmarks/bench_heads.py --quick             # small sizes, seconds

Prints a Markdown table (with the machine load) and writes it as CSV to
``benchmarks/results/bench_heads.csv``. CPU time is user + system time of this process; on a
shared machine wall time means little.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import warnings

import numpy as np
import pandas as pd
import torch
from _report import report

from transferlib.config import RunParams
from transferlib.data import random_class_subsets
from transferlib.experiments.presets import GLYPHS, rng
from transferlib.experiments.sources import network_outputs, pretrained_network, run_dataset
from transferlib.training import retrain_heads


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn):
    cpu, wall = _cpu(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - wall, _cpu() - cpu


def _logistic_tasks(ds, rows: np.ndarray, quick: bool) -> np.ndarray:
    columns = [c for c in ds.labels.columns if c != "char"]
    labels = [ds.column(c)[rows] for c in columns]
    char = ds.column("char")[rows]
    generator = rng(0, "bench-heads", "groupings")
    for k in generator.integers(2, 13, size=50 - len(labels)):
        labels.append(generator.integers(0, k, size=int(char.max()) + 1)[char])
    labels = np.stack(labels)
    return labels[:12] if quick else labels


def _sklearn_loop(z_train, z_test, y_train, y_test, **options):
    from scipy.special import log_softmax
    from sklearn.linear_model import LogisticRegression

    accuracy, log_lik, iterations = [], [], []
    for train, test in zip(y_train, y_test):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter, as in its default
            model = LogisticRegression(**options).fit(z_train, train)
        decision = model.decision_function(z_test)
        if decision.ndim == 1:
            decision = np.stack([np.zeros_like(decision), decision], axis=1)
        log_probs = log_softmax(decision, axis=1)
        codes = np.searchsorted(model.classes_, test)
        accuracy.append((log_probs.argmax(1) == codes).mean())
        log_lik.append(log_probs[np.arange(len(codes)), codes].mean())
        iterations.append(int(np.max(model.n_iter_)))
    return np.mean(accuracy), np.mean(log_lik), np.mean(iterations)


def bench_logistic(features, labels, n_train: int, converged: bool) -> list[dict]:
    from sklearn.preprocessing import StandardScaler

    x_train, x_test = features[:n_train], features[n_train:]
    y_train, y_test = labels[:, :n_train], labels[:, n_train:]
    scaler = StandardScaler().fit(x_train)
    z_train, z_test = scaler.transform(x_train), scaler.transform(x_test)
    tasks, columns = len(labels), int(sum(len(np.unique(y)) for y in y_train))
    what = f"{tasks} logistic heads, {n_train} x {features.shape[1]} features, {columns} classes"

    def ours(**options) -> tuple[float, float, float]:
        table = retrain_heads(x_train, y_train, x_test, y_test, "logistic", device="cpu", **options)
        return (
            table["accuracy"].mean(),
            table["test_log_likelihood"].mean(),
            table["iterations"].mean(),
        )

    runs = [
        (
            "scikit-learn LogisticRegression() loop (tol 1e-4, max_iter 100)",
            lambda: _sklearn_loop(z_train, z_test, y_train, y_test),
        ),
        ("retrain_heads logistic, defaults (tol 1e-4, max_iter 100)", ours),
        (
            "retrain_heads logistic, defaults and ftol 3e-3",
            lambda: ours(ftol=3e-3),
        ),
    ]
    if converged:
        runs += [
            (
                "scikit-learn loop, converged (tol 1e-6, max_iter 10000)",
                lambda: _sklearn_loop(z_train, z_test, y_train, y_test, tol=1e-6, max_iter=10_000),
            ),
            (
                "retrain_heads logistic, converged (tol 1e-6, max_iter 2000)",
                lambda: ours(tol=1e-6, max_iter=2000),
            ),
        ]
    rows = []
    for name, fn in runs:
        (accuracy, log_lik, iterations), wall, cpu = _timed(fn)
        rows.append(
            {
                "benchmark": what,
                "method": name,
                "wall_s": wall,
                "cpu_s": cpu,
                "test_accuracy": accuracy,
                "test_log_likelihood": log_lik,
                "mean_iterations": iterations,
            }
        )
    reference = rows[0]["cpu_s"]
    for row in rows:
        row["speed-up (cpu)"] = reference / row["cpu_s"]
    return rows


def bench_sgd(ds, features, n_tasks: int, epochs: int) -> list[dict]:
    from transferlib.experiments.protocols import task_codes

    pool = np.unique(ds.column("char"))[10:]  # as the chapter: 100 characters
    specs = random_class_subsets(
        ds, n_tasks, target="char", classes=pool, max_classes=len(pool), seed=0
    )
    train, test = np.asarray(ds.splits["train"]), np.asarray(ds.splits["test"])
    y_train = np.stack([task_codes(ds, s, train, "train") for s in specs])
    y_test = np.stack([task_codes(ds, s, test, "test") for s in specs])
    images = int((y_train >= 0).sum())
    what = (
        f"{n_tasks} SGD heads (lr 0.01, batch 10), 2-100 classes, {images} training images "
        f"in all, {features.shape[1]}-d, per epoch"
    )
    options = {"lr": 0.01, "batch_size": 10, "epochs": epochs, "device": "cpu"}
    rows = []
    for name, fn in (
        (
            "retrain_heads sgd, all tasks in one call",
            lambda: retrain_heads(
                features[train], y_train, features[test], y_test, "sgd", **options
            ),
        ),
        (
            "retrain_heads sgd, one call per task",
            lambda: pd.concat(
                [
                    retrain_heads(
                        features[train],
                        y_train[t : t + 1],
                        features[test],
                        y_test[t : t + 1],
                        "sgd",
                        **options,
                    )
                    for t in range(n_tasks)
                ]
            ),
        ),
    ):
        table, wall, cpu = _timed(fn)
        rows.append(
            {
                "benchmark": what,
                "method": name,
                "wall_s": wall / epochs,
                "cpu_s": cpu / epochs,
                "test_accuracy": table["accuracy"].mean(),
                "test_log_likelihood": table["test_log_likelihood"].mean(),
                "mean_iterations": epochs,
            }
        )
    rows[0]["speed-up (cpu)"], rows[1]["speed-up (cpu)"] = rows[1]["cpu_s"] / rows[0]["cpu_s"], 1.0
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="12 logistic, 6 SGD tasks")
    parser.add_argument("--converged", action="store_true", help="also solve to tol 1e-6")
    parser.add_argument("--cache-dir", default=None, help="cache of the extracted features")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    run = RunParams(scale="book", device="cpu", cache_dir=args.cache_dir)
    ds = run_dataset(run, GLYPHS["book"])
    network = pretrained_network("efficientnet_lite0", GLYPHS["book"].pretrained_input_size, "cpu")
    features = network_outputs(run, network, ds.images, ("features",))["features"]
    picked = np.sort(rng(0, "bench-heads", "rows").choice(len(ds), 6_000, replace=False))
    load_before = os.getloadavg()
    rows = bench_logistic(
        features[picked], _logistic_tasks(ds, picked, args.quick), 5_000, args.converged
    )
    rows += bench_sgd(ds, features, 6 if args.quick else 60, 1)
    table = pd.DataFrame(rows)
    report(table, "bench_heads", "retrain_heads vs scikit-learn", load_before, decimals=4)


if __name__ == "__main__":
    main()
