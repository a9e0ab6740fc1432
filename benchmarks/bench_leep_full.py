"""What the LEEP chapter's full scale costs, measured unit by unit on its own tasks.

The full preset is the paper's protocol: 200 target tasks per setting, each scored, re-trained
(SGD heads, up to 100 epochs) and fine-tuned (the whole network, up to 100 epochs), plus a
from-scratch reference per small task. Nothing here is a model of the cost: each unit of work is
run on the chapter's own full-scale tasks, sources and outputs, and multiplied by how often the
preset runs it.

Per setting (§5.1-5.3, :data:`~transferlib.experiments.leep.SETTINGS`) and source:

* ``outputs``: the source's probabilities and penultimate features on every image (once);
* ``scores``: the paper's three scores on the first ``--score-tasks`` tasks, per task; and the
  later estimators on the median-sized one of those, counted on every task within the preset's
  ``beyond_paper_max_train``;
* ``heads``: one SGD epoch of the first 20 tasks re-trained together (the chapter's chunk);
* ``fine-tune``: one epoch of the whole network on one task (the full preset's stack of 1),
  converted to image-steps per second and multiplied by the image-steps of all fine-tuned
  tasks;
* ``references`` (small settings): one epoch of a from-scratch network on one task, likewise.

§5.4 (meta-training) and §5.7 (source selection) are not probed.

Usage::

    PYTHONPATH=. python benchmarks/bench_leep_full.py --device cuda
    PYTHONPATH=. python benchmarks/bench_leep_full.py --scale smoke --device cpu   # check, seconds

Prints a Markdown table and writes it as CSV to ``benchmarks/results/bench_leep_full.csv``:
one row per (setting, source, unit) with the measured seconds, the count the preset runs it,
and the projected seconds.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch
from _report import report

from transferlib.config import run_parameters
from transferlib.experiments import leep
from transferlib.experiments.protocols import head_transfer, stacked_task, task_codes
from transferlib.experiments.scoring import compute_scores
from transferlib.experiments.sources import network_outputs
from transferlib.models import build_model, preprocess
from transferlib.training.stacked import StackedTask, train_stacked

HEAD_CHUNK = 20  # tasks re-trained together, as the chapter does


def _timed(
    device: str, work: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> tuple[Any, float]:
    """``work(*args, **kwargs)`` and its wall time, the device's queue drained on both sides."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = work(*args, **kwargs)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return value, time.perf_counter() - start


def _epoch_rate(model: Any, ds: Any, spec: Any, head: Any, device: str, batch: int) -> float:
    """Image-steps per second of one SGD epoch of ``model`` (every layer) on one task; a first
    epoch on a few images warms the device up."""
    images = torch.from_numpy(ds.images)
    task = stacked_task(ds, spec, 0)
    train = functools.partial(
        train_stacked,
        [model],
        images,
        cut=None,
        epochs=1,
        lr=0.01,
        batch_size=batch,
        heads=None if head is None else [head],
        transform=functools.partial(preprocess, model),
        device=device,
    )
    warm = StackedTask(
        task.train_rows[:50],
        task.train_labels[:50],
        task.test_rows[:10],
        task.test_labels[:10],
        spec.num_classes,
        0,
    )
    train([warm])
    _, seconds = _timed(device, train, [task])
    return len(task.train_rows) / seconds


def probe(
    scale: str, device: str, score_tasks: int, cache_dir: str | None, settings: list[str]
) -> pd.DataFrame:
    run = run_parameters("leep", scale=scale, device=device, cache_dir=cache_dir, seed=0)
    preset = leep.PRESETS[scale]
    rows: list[dict[str, Any]] = []

    def add(setting: str, source: str, unit: str, seconds: float, count: float, what: str) -> None:
        rows.append(
            {
                "setting": setting,
                "source": source,
                "unit": unit,
                "what": what,
                "measured [s]": seconds,
                "count": count,
                "projected [s]": seconds * count,
            }
        )
        print(rows[-1], flush=True)

    networks = {}
    for source in leep.SOURCES:
        networks[source], seconds = _timed(device, leep.source_network, run, preset, source)
        add("-", source, "source", seconds, 1, "packaged" if "lite" in source else "trained")
    for setting in settings:
        spec = preset.setting(setting)
        ds = leep.setting_dataset(run, preset, setting)
        tasks = leep.setting_tasks(run, preset, setting)
        tuned = tasks[: spec.n_finetune]
        train_rows, test_rows = np.asarray(ds.splits["train"]), np.asarray(ds.splits["test"])
        for source, network in networks.items():
            outputs = ("probs", "features")
            out, seconds = _timed(device, network_outputs, run, network, ds.images, outputs)
            add(setting, source, "outputs", seconds, 1, f"{len(ds.images)} images")
            probs, features = out["probs"].astype(np.float64), out["features"].astype(np.float64)

            probed = tasks[:score_tasks]
            spent = 0.0
            for task in probed:
                rows_ = task.train_indices
                labels = task_codes(ds, task, rows_, "train")
                _, seconds = _timed(
                    device,
                    compute_scores,
                    leep.PAPER_SCORES,
                    labels,
                    source_labels=probs[rows_].argmax(1),
                    source_probs=probs[rows_],
                    features=features[rows_],
                    device=device,
                )
                spent += seconds
            add(setting, source, "paper scores", spent / len(probed), len(tasks), "per task")
            median = sorted(probed, key=lambda t: len(t.train_indices))[len(probed) // 2]
            labels = task_codes(ds, median, median.train_indices, "train")
            names = leep.score_names(preset, len(median.train_indices), median.num_classes)
            later = [n for n in names if n not in leep.PAPER_SCORES]
            if later:
                _, seconds = _timed(
                    device,
                    compute_scores,
                    later,
                    labels,
                    source_labels=probs[median.train_indices].argmax(1),
                    source_probs=probs[median.train_indices],
                    features=features[median.train_indices],
                    device=device,
                )
                eligible = sum(len(t.train_indices) <= preset.beyond_paper_max_train for t in tasks)
                add(
                    setting,
                    source,
                    "later scores",
                    seconds,
                    eligible,
                    f"per task; probed on {len(median.train_indices)} images",
                )

            chunk = tasks[:HEAD_CHUNK]
            _, seconds = _timed(
                device,
                head_transfer,
                run,
                ds,
                chunk,
                features[train_rows],
                train_rows,
                features[test_rows],
                test_rows,
                "sgd",
                lr=preset.finetune.lr,
                batch_size=preset.finetune.batch_size,
                epochs=1,
                seed=0,
            )
            chunks = -(-len(tasks) // HEAD_CHUNK)
            add(
                setting,
                source,
                "heads",
                seconds,
                chunks * spec.head_epochs,
                f"1 epoch of {len(chunk)} tasks",
            )

            if tuned:
                head = torch.nn.Linear(network.model.feature_dim, tuned[0].num_classes)
                rate = _epoch_rate(
                    network.model, ds, tuned[0], head, device, preset.finetune.batch_size
                )
                steps = sum(len(t.train_indices) for t in tuned) * spec.finetune_epochs
                add(
                    setting,
                    source,
                    "fine-tune",
                    1 / rate,
                    steps,
                    f"per image-step ({rate:.0f}/s, whole network)",
                )
        if setting in ("small", "small-gray"):
            training = preset.reference_training
            model = build_model(training.model, tuned[0].num_classes, **training.model_kwargs())
            rate = _epoch_rate(model, ds, tuned[0], None, device, training.batch_size)
            steps = sum(len(t.train_indices) for t in tuned) * training.epochs
            add(
                setting,
                training.model,
                "references",
                1 / rate,
                steps,
                f"per image-step ({rate:.0f}/s)",
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", default="full", choices=("smoke", "book", "full"))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--score-tasks", type=int, default=3)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--settings", nargs="+", default=list(leep.SETTINGS), choices=leep.SETTINGS)
    args = parser.parse_args()
    load = os.getloadavg()
    start = time.perf_counter()
    table = probe(args.scale, args.device, args.score_tasks, args.cache_dir, args.settings)
    totals = table.groupby("setting", sort=False)["projected [s]"].sum() / 3600
    print(f"\nprobe wall time {time.perf_counter() - start:.0f} s; projected hours per setting:")
    print(totals.round(2).to_string())
    report(table, "bench_leep_full", f"LEEP chapter at {args.scale} scale, unit costs", load, 4)


if __name__ == "__main__":
    main()
