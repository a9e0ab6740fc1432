"""What fine-tuning many target tasks costs on a CPU, and what the exact shortcuts save.

The LEEP chapter fine-tunes each source on dozens of target tasks and trains a network from
scratch for dozens more. Measured here, in SGD *image-steps* per second (one image through one
forward and backward pass), with the paper's batch size 10 unless stated:

(a) the whole network, one task at a time: EfficientNet-Lite0 at 64 px and the ResNet-20-like
    source (width 8, 32 px), from uint8 images;
(b) only the layers after a cut point, the lower part frozen in eval mode and its activations
    computed once (exact for a frozen part without augmentation): EfficientNet-Lite0 after
    ``stage7`` (its last 1x1 convolution, batch norm and the head), ResNet-20 after
    ``layer3.1`` (its last block and the head); one task at a time and 24 tasks stacked
    (:func:`transferlib.training.stacked.train_stacked`, exact as well);
(c) the small CNN trained from scratch (the chapter's reference networks): one at a time and 24
    stacked.

The last column converts each rate into the time of one epoch of the book's §5.1 fine-tuning
workload: 24 tasks with 5,100 training images each on average. Inputs are random: the timings
do not depend on image content.

Usage::

    nice .venv/bin/python benchmarks/bench_finetune.py            # 2 threads
    .venv/bin/python benchmarks/bench_finetune.py --quick          # fewer steps

Prints a Markdown table (with the machine load) and writes it as CSV to
``benchmarks/results/bench_finetune.csv``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np
import pandas as pd
import torch
from _report import report

from transferlib.models import build_model, preprocess
from transferlib.training.stacked import StackedTask, train_stacked

WORKLOAD = 24 * 5_100  # image-steps of one epoch of the book's §5.1 fine-tuning


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _tasks(n_tasks: int, n_train: int, pool: int, classes: int = 50) -> list[StackedTask]:
    generator = np.random.default_rng(0)
    return [
        StackedTask(
            generator.choice(pool, n_train, replace=False),
            generator.integers(0, classes, n_train),
            np.arange(10),
            generator.integers(0, classes, 10),
            classes,
            seed,
        )
        for seed in range(n_tasks)
    ]


def _measure(label: str, model, inputs, tasks, cut, transform=None) -> dict:
    heads = []
    for _ in tasks:
        heads.append(torch.nn.Linear(model.feature_dim, tasks[0].num_classes))
    options = {
        "cut": cut,
        "epochs": 1,
        "lr": 0.01,
        "batch_size": 10,
        "heads": heads,
        "transform": transform,
        "device": "cpu",
    }
    warm = [
        StackedTask(
            t.train_rows[:20],
            t.train_labels[:20],
            t.test_rows,
            t.test_labels,
            t.num_classes,
            t.seed,
        )
        for t in tasks
    ]
    train_stacked([model] * len(tasks), inputs, warm, **options)  # allocations, primitives
    cpu, wall = _cpu(), time.perf_counter()
    train_stacked([model] * len(tasks), inputs, tasks, **options)
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    steps = sum(len(t.train_rows) for t in tasks)
    return {
        "benchmark": label,
        "tasks at once": len(tasks),
        "image-steps": steps,
        "wall_s": wall,
        "cpu_s": cpu,
        "image-steps/s (wall)": steps / wall,
        "image-steps per cpu-s": steps / cpu,
        "§5.1 book epoch (s, wall)": WORKLOAD * wall / steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = np.random.default_rng(0)
    n = 400 if args.quick else 1_000
    images = torch.from_numpy(generator.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8))
    load_before = os.getloadavg()
    rows = []

    torch.manual_seed(0)
    lite = build_model("efficientnet_lite0", input_size=64).eval()
    resnet = build_model("resnet20", 10, width=8).eval()
    small = build_model("small_cnn", 50, width=16)
    per_task = 60 if args.quick else 200
    whole_tasks = _tasks(1, per_task, n)
    rows.append(
        _measure(
            "(a) EfficientNet-Lite0 64 px, whole network",
            lite,
            images,
            whole_tasks,
            None,
            lambda b: preprocess(lite, b),
        )
    )
    rows.append(
        _measure(
            "(a) ResNet-20 (width 8) 32 px, whole network",
            resnet,
            images,
            whole_tasks,
            None,
            lambda b: preprocess(resnet, b),
        )
    )
    with torch.no_grad():
        lite_maps = torch.cat(
            [
                lite.activation(preprocess(lite, images[i : i + 200]), "stage7")
                for i in range(0, n, 200)
            ]
        )
        resnet_maps = resnet.activation(preprocess(resnet, images), "layer3.1")
    for stack in (1, 24):
        tasks = _tasks(stack, per_task, n)
        rows.append(
            _measure(
                "(b) EfficientNet-Lite0 after stage7 (cached activations)",
                lite,
                lite_maps,
                tasks,
                "stage7",
            )
        )
        rows.append(
            _measure(
                "(b) ResNet-20 after layer3.1 (cached activations)",
                resnet,
                resnet_maps,
                tasks,
                "layer3.1",
            )
        )
    for stack in (1, 24):
        tasks = _tasks(stack, per_task, n)
        models = []
        for t in range(stack):
            torch.manual_seed(t)
            models.append(build_model("small_cnn", 50, width=16))
        heads_free = {
            "cut": None,
            "epochs": 1,
            "lr": 0.01,
            "batch_size": 10,
            "device": "cpu",
            "transform": lambda b: preprocess(small, b),
        }
        cpu, wall = _cpu(), time.perf_counter()
        train_stacked(models, images, tasks, **heads_free)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        steps = stack * per_task
        rows.append(
            {
                "benchmark": "(c) small CNN (width 16) from scratch, 32 px",
                "tasks at once": stack,
                "image-steps": steps,
                "wall_s": wall,
                "cpu_s": cpu,
                "image-steps/s (wall)": steps / wall,
                "image-steps per cpu-s": steps / cpu,
                "§5.1 book epoch (s, wall)": WORKLOAD * wall / steps,
            }
        )
    table = pd.DataFrame(rows)
    report(table, "bench_finetune", "fine-tuning cost", load_before, decimals=2)


if __name__ == "__main__":
    main()
