"""Speed of transferlib.training: training, batched heads, feature extraction.

Measures
  (a) ResNet-20, one epoch on 10,000 random 32x32 images (batch 128, augmentation on),
      on the CPU with ``--threads`` threads (default 2);
  (b) the same on CUDA with ``--device cuda`` (mixed precision, channels-last);
  (c) ``retrain_heads`` for 200 tasks on shared 1280-d features vs. a Python loop of
      ``retrain_head`` over the same tasks, for the "logistic" and "sgd" methods;
  (d) EfficientNet-Lite0 feature extraction, images/s at 64, 128 and 224 px, with 256 images a
      batch and with the device's default batch;
  (e) :func:`~transferlib.training.train` against the plainest channels-last PyTorch loop
      (uint8 batch -> float -> normalise -> forward -> cross entropy -> SGD step), for the NCE
      chapter's small CNN and for ResNet-20: the same images, batches and epochs; CPU time
      (user + sys of this process) beside wall time, the minimum over ``--repeats`` alternating
      runs, and the ratio of the two loops; also ``train`` evaluating a test set a fifth of the
      training set's size after every epoch, and only after the last (``eval_every=0``);
  (f) where a training step's CPU time goes (``torch.profiler``, self time grouped by kind of
      operation) for the same small CNN.

Usage::

    nice .venv/bin/python benchmarks/bench_training.py            # everything, CPU
    nice .venv/bin/python benchmarks/bench_training.py --quick    # small sizes, seconds
    nice .venv/bin/python benchmarks/bench_training.py --parts e,f --threads 1
    .venv/bin/python benchmarks/bench_training.py --device cuda --parts a,d

Wall time on a shared machine means little: report the load (``uptime``) and the CPU time.

Prints a Markdown table and writes it as CSV to ``benchmarks/results/bench_training.csv``.
Inputs are random: the timings do not depend on image content.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from transferlib.models import build_model, efficientnet_lite, preprocess
from transferlib.training import (
    extract,
    inference_batch_size,
    resolve_device,
    retrain_head,
    retrain_heads,
    train,
)


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
    data = _Task(
        rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 10, n).astype(np.int64),
        tuple(str(k) for k in range(10)),
    )
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
    return {
        "part": part,
        "benchmark": f"ResNet-20, 1 epoch, {n} images 32px, batch 128",
        "device": str(device),
        "seconds": seconds,
        "throughput": f"{n / seconds:.0f} images/s",
    }


def _head_problem(tasks: int, n_train: int, n_test: int, dim: int, classes: int):
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n_train + n_test, 32))
    features = np.maximum(
        latent @ rng.normal(size=(32, dim)) + 0.5 * rng.normal(size=(n_train + n_test, dim)), 0
    )
    labels = np.stack(
        [
            np.argmax(
                latent @ rng.normal(size=(32, classes))
                + rng.normal(size=(n_train + n_test, classes)),
                1,
            )
            for _ in range(tasks)
        ]
    )
    return features.astype(np.float32), labels[:, :n_train], labels[:, n_train:]


def bench_heads(
    method: str, tasks: int, loop_tasks: int, options: dict, device: torch.device
) -> list[dict]:
    n_train, n_test, dim, classes = 500, 500, 1280, 4
    features, train_sets, test_sets = _head_problem(tasks, n_train, n_test, dim, classes)
    train_x, test_x = features[:n_train], features[n_train:]
    start = time.perf_counter()
    table = retrain_heads(
        train_x, train_sets, test_x, test_sets, method=method, device=device, **options
    )
    batched = time.perf_counter() - start
    start = time.perf_counter()
    looped = []
    for t in range(loop_tasks):
        looped.append(
            retrain_head(
                train_x,
                train_sets[t],
                test_x,
                test_sets[t],
                method=method,
                device=device,
                **options,
            )
        )
    loop_seconds = (time.perf_counter() - start) * tasks / loop_tasks
    gap = np.abs(
        table["test_log_likelihood"].to_numpy()[:loop_tasks]
        - [r.test_log_likelihood for r in looped]
    ).max()
    spec = f"{tasks} heads, {method} {options}, n={n_train}+{n_test}, D={dim}, K={classes}"
    note = "" if loop_tasks == tasks else f" (loop timed on {loop_tasks} tasks, scaled)"
    return [
        {
            "part": "(c)",
            "benchmark": f"retrain_heads: {spec}",
            "device": str(device),
            "seconds": batched,
            "throughput": f"{tasks / batched:.1f} tasks/s; speed-up x{loop_seconds / batched:.1f}",
        },
        {
            "part": "(c)",
            "benchmark": f"loop of retrain_head{note}: {spec}",
            "device": str(device),
            "seconds": loop_seconds,
            "throughput": f"{tasks / loop_seconds:.1f} tasks/s; max |test LL gap| {gap:.1e}",
        },
    ]


def bench_lite0(device: torch.device, n: int) -> list[dict]:
    """Extraction at three input sizes, with 256 images a batch and with the default batch of
    the device (:func:`~transferlib.training.inference_batch_size`: small on a CPU, so that the
    activations stay in cache)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 3, 224, 224), dtype=np.uint8)
    rows = []
    for size in (64, 128, 224):
        model = efficientnet_lite(0, input_size=size).eval()
        seconds = {}
        for batch in (256, inference_batch_size(device, size)):
            # Warm-up at the timed batch size: cuDNN picks its kernels per input shape.
            extract(model, images[:batch], ("features",), batch_size=batch, device=device)
            _sync(device)
            start = time.perf_counter()
            extract(model, images, ("features",), batch_size=batch, device=device)
            _sync(device)
            seconds[batch] = time.perf_counter() - start
        for batch, value in seconds.items():
            rows.append(
                {
                    "part": "(d)",
                    "benchmark": f"EfficientNet-Lite0 features, {n} images at {size}px, "
                    f"batch {batch}",
                    "device": str(device),
                    "seconds": value,
                    "throughput": f"{n / value:.1f} images/s; "
                    f"x{seconds[256] / value:.2f} of batch 256",
                }
            )
    return rows


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    """Wall and CPU seconds (user + sys of this process, all its threads) of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def plain_loop(model: torch.nn.Module, data: _Task, epochs: int, batch_size: int) -> None:
    """The plainest channels-last training loop: what :func:`train` is compared with."""
    model.train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    images, labels = torch.from_numpy(data.images), torch.from_numpy(data.labels)
    for _ in range(epochs):
        for index in torch.randperm(len(labels)).split(batch_size):
            x = preprocess(model, images[index]).contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def _fresh_model(name: str, kwargs: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, 2, **kwargs)


def _plain_fresh(model: Callable, data: _Task, epochs: int, batch: int) -> None:
    plain_loop(model(), data, epochs, batch)


def _train_fresh(model: Callable, data: _Task, epochs: int, batch: int, test, **options) -> None:
    train(model(), data, test, epochs, 0.05, batch, device="cpu", progress=False, **options)


def bench_loop_vs_plain(n: int, epochs: int, repeats: int) -> list[dict]:
    rng = np.random.default_rng(0)
    data = _Task(
        rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 2, n).astype(np.int64),
        ("a", "b"),
    )
    test = _Task(data.images[: n // 5], data.labels[: n // 5], data.class_names)
    rows = []
    for name, kwargs, batch in (("small_cnn", {"width": 16}, 64), ("resnet20", {}, 128)):
        model = functools.partial(_fresh_model, name, kwargs)
        loop = functools.partial(_train_fresh, model, data, epochs, batch)
        variants = {
            "plain loop": functools.partial(_plain_fresh, model, data, epochs, batch),
            "train": functools.partial(loop, None),
            "train, test set every epoch": functools.partial(loop, test),
            "train, test set after the last epoch": functools.partial(loop, test, eval_every=0),
        }
        variants["plain loop"]()  # warm-up: allocator, oneDNN primitive caches
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        for _ in range(repeats):  # alternate, so that a load spike hits every variant
            for label, run in variants.items():
                times[label].append(_timed(run))
        plain_cpu = min(c for _, c in times["plain loop"])
        for label, measured in times.items():
            wall, cpu = min(w for w, _ in measured), min(c for _, c in measured)
            rows.append(
                {
                    "part": "(e)",
                    "benchmark": f"{name} {kwargs or ''}, {label}: {epochs} epochs x {n} images "
                    f"32px, batch {batch}",
                    "device": "cpu",
                    "seconds": wall,
                    "cpu_seconds": cpu,
                    "throughput": f"{epochs * n / cpu:.0f} images per CPU-second; "
                    f"CPU time / plain loop {cpu / plain_cpu:.3f}",
                }
            )
    return rows


_KINDS = {
    "convolution": ("conv", "mkldnn"),
    "batch norm": ("batch_norm",),
    "ReLU and max pooling": ("threshold", "relu", "clamp", "max_pool"),
    "optimizer (SGD)": ("sgd", "_foreach", "add_", "mul_", "lerp"),
    "loss": ("cross_entropy", "log_softmax", "nll_loss"),
}


def bench_step_profile(steps: int) -> list[dict]:
    """Self CPU time of a small-CNN training step by kind of operation."""
    from torch.profiler import ProfilerActivity, profile

    rng = np.random.default_rng(0)
    n = 64 * (steps + 3)
    data = _Task(
        rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
        rng.integers(0, 2, n).astype(np.int64),
        ("a", "b"),
    )
    torch.manual_seed(0)
    model = build_model("small_cnn", 2, width=16)
    train(model, data, None, 1, 0.05, 64, device="cpu", progress=False)  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train(model, data, None, 1, 0.05, 64, device="cpu", progress=False)
    totals = dict.fromkeys([*_KINDS, "other (input, indexing, bookkeeping)"], 0.0)
    for event in prof.key_averages():
        name = event.key.lower()
        kind = next((k for k, words in _KINDS.items() if any(w in name for w in words)), None)
        totals[kind or "other (input, indexing, bookkeeping)"] += event.self_cpu_time_total
    whole = sum(totals.values())
    return [
        {
            "part": "(f)",
            "benchmark": f"small_cnn (width 16) training step, batch 64: {kind}",
            "device": "cpu",
            "seconds": micro / 1e6,
            "cpu_seconds": micro / 1e6,
            "throughput": f"{100 * micro / whole:.1f}% of the step's CPU time",
        }
        for kind, micro in totals.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto (default cpu)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--parts", default="a,c,d,e,f", help="comma-separated subset of a,c,d,e,f")
    parser.add_argument("--repeats", type=int, default=3, help="alternating repeats in (e)")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "bench_training.csv")
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    parts = set(args.parts.split(","))
    rows: list[dict] = []
    if "a" in parts:
        rows.append(bench_resnet20_epoch(device, 1000 if args.quick else 10_000))
    if "c" in parts:
        tasks = 20 if args.quick else 200
        rows += bench_heads("logistic", tasks, tasks // 2 if args.quick else 50, {}, device)
        rows += bench_heads(
            "sgd", tasks, tasks // 2 if args.quick else 20, {"epochs": 10, "seed": 0}, device
        )
    if "d" in parts:
        rows += bench_lite0(device, 32 if args.quick else 256 if device.type == "cpu" else 4096)
    if "e" in parts:
        rows += bench_loop_vs_plain(
            600 if args.quick else 6000, 1 if args.quick else 2, args.repeats
        )
    if "f" in parts:
        rows += bench_step_profile(5 if args.quick else 40)
    table = pd.DataFrame(rows)
    table["seconds"] = table["seconds"].round(2)
    if "cpu_seconds" in table:
        table["cpu_seconds"] = table["cpu_seconds"].round(2)
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, load average {load}"
    )
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
