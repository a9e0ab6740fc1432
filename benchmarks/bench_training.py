"""Speed of transferlib.training: training, batched heads, feature extraction.

Measures
  (a) ResNet-20, one epoch on 10,000 random 32x32 images (batch 128, augmentation on),
      on the CPU with ``--threads`` threads (default 2);
  (b) the same on CUDA with ``--device cuda`` (mixed precision, channels-last);
  (c) ``retrain_heads`` for 200 tasks on shared 1280-d features vs. a Python loop of
      ``retrain_head`` over the same tasks, for the "logistic" and "sgd" methods;
  (d) EfficientNet-Lite0 feature extraction, images/s at 96, 128 and 224 px.

Usage::

    nice .venv/bin/python benchmarks/bench_training.py            # everything, CPU
    nice .venv/bin/python benchmarks/bench_training.py --quick    # small sizes, seconds
    .venv/bin/python benchmarks/bench_training.py --device cuda --parts a,d

Prints a Markdown table and writes it as CSV to ``benchmarks/results/bench_training.csv``.
Inputs are random: the timings do not depend on image content.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from transferlib.models import build_model, efficientnet_lite
from transferlib.training import extract, resolve_device, retrain_head, retrain_heads, train


@dataclass(frozen=True)
class _Task:
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_resnet20_epoch(device: torch.device, n: int) -> dict:
    rng = np.random.default_rng(0)
    data = _Task(rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                 rng.integers(0, 10, n).astype(np.int64), tuple(str(k) for k in range(10)))
    torch.manual_seed(0)
    model = build_model("resnet20", num_classes=10)
    # warm-up (allocations, cuDNN autotuning) on a slice, not timed
    warm = _Task(data.images[:256], data.labels[:256], data.class_names)
    train(model, warm, None, 1, 0.1, 128, device=device, augment=True, progress=False)
    _sync(device)
    start = time.perf_counter()
    train(model, data, None, 1, 0.1, 128, device=device, augment=True, progress=False)
    _sync(device)
    seconds = time.perf_counter() - start
    part = "(a)" if device.type == "cpu" else "(b)"
    return {"part": part, "benchmark": f"ResNet-20, 1 epoch, {n} images 32px, batch 128",
            "device": str(device), "seconds": seconds, "throughput": f"{n / seconds:.0f} images/s"}


def _head_problem(tasks: int, n_train: int, n_test: int, dim: int, classes: int):
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n_train + n_test, 32))
    features = np.maximum(latent @ rng.normal(size=(32, dim)) + 0.5 * rng.normal(size=(n_train + n_test, dim)), 0)
    labels = np.stack([
        np.argmax(latent @ rng.normal(size=(32, classes)) + rng.normal(size=(n_train + n_test, classes)), 1)
        for _ in range(tasks)
    ])
    return features.astype(np.float32), labels[:, :n_train], labels[:, n_train:]


def bench_heads(method: str, tasks: int, loop_tasks: int, options: dict) -> list[dict]:
    n_train, n_test, dim, classes = 500, 500, 1280, 4
    features, train_sets, test_sets = _head_problem(tasks, n_train, n_test, dim, classes)
    train_x, test_x = features[:n_train], features[n_train:]
    start = time.perf_counter()
    table = retrain_heads(train_x, train_sets, test_x, test_sets, method=method, **options)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = []
    for t in range(loop_tasks):
        task_options = {**options, "seed": options["seed"] + t} if "seed" in options else options
        looped.append(retrain_head(train_x, train_sets[t], test_x, test_sets[t], method=method, **task_options))
    loop_seconds = (time.perf_counter() - start) * tasks / loop_tasks
    gap = np.abs(table["test_log_likelihood"].to_numpy()[:loop_tasks]
                 - [r.test_log_likelihood for r in looped]).max()
    spec = f"{tasks} heads, {method} {options}, n={n_train}+{n_test}, D={dim}, K={classes}"
    note = "" if loop_tasks == tasks else f" (loop timed on {loop_tasks} tasks, scaled)"
    return [
        {"part": "(c)", "benchmark": f"retrain_heads: {spec}", "device": "cpu", "seconds": batched,
         "throughput": f"{tasks / batched:.1f} tasks/s; speed-up x{loop_seconds / batched:.1f}"},
        {"part": "(c)", "benchmark": f"loop of retrain_head{note}: {spec}", "device": "cpu",
         "seconds": loop_seconds,
         "throughput": f"{tasks / loop_seconds:.1f} tasks/s; max |test LL gap| {gap:.1e}"},
    ]


def bench_lite0(device: torch.device, n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 224, 224), dtype=np.uint8)
    rows = []
    for size in (96, 128, 224):
        model = efficientnet_lite(0, input_size=size).eval()
        extract(model, images[:16], ("features",), batch_size=16, device=device)  # warm-up
        _sync(device)
        start = time.perf_counter()
        extract(model, images, ("features",), batch_size=64, device=device)
        _sync(device)
        seconds = time.perf_counter() - start
        rows.append({"part": "(d)", "benchmark": f"EfficientNet-Lite0 features, {n} images at {size}px",
                     "device": str(device), "seconds": seconds, "throughput": f"{n / seconds:.1f} images/s"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--parts", default="a,c,d", help="comma-separated subset of a,c,d")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_training.csv"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    parts = set(args.parts.split(","))
    rows: list[dict] = []
    if "a" in parts:
        rows.append(bench_resnet20_epoch(device, 1000 if args.quick else 10_000))
    if "c" in parts:
        tasks = 20 if args.quick else 200
        rows += bench_heads("logistic", tasks, tasks // 2 if args.quick else 50, {})
        rows += bench_heads("sgd", tasks, tasks // 2 if args.quick else 20, {"epochs": 10, "seed": 0})
    if "d" in parts:
        rows += bench_lite0(device, 32 if args.quick else 256)
    table = pd.DataFrame(rows)
    table["seconds"] = table["seconds"].round(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
