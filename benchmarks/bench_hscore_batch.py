"""Time batched H-scores (one feature matrix, many labelings) against one h_score per labeling.

Plain script; the default size is the H-score chapter's per-pixel case at full scale (a 512-d
source code, 4,000 images, a 32x32 target clustered into a 16-colour palette), e.g.:

    nice python benchmarks/bench_hscore_batch.py --n 4000 --d 512 --labelings 1024 --repeat 3

It prints the best-of-``--repeat`` wall time of :func:`transferlib.scores.h_scores` over all
labelings, the time of calling :func:`transferlib.scores.h_score` once per labeling (measured on
``--loop-sample`` labelings and scaled up, since the loop is linear in their number), their
ratio, and the largest absolute difference of the two results on the measured labelings.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from transferlib.scores import h_score, h_scores


def _best_time(
    function: Callable[[], object], repeat: int, sync: Callable[[], None]
) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        value = function()
        sync()
        times.append(time.perf_counter() - start)
    return min(times), value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--labelings", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--loop-sample", type=int, default=32)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    # Labelings that depend on the features to different degrees, like pixels of a dense target.
    directions = rng.standard_normal((args.d, args.labelings))
    features = rng.standard_normal((args.n, args.d))
    signal = features @ directions / np.sqrt(args.d) + rng.standard_normal((args.n, args.labelings))
    edges = np.quantile(signal, np.linspace(0, 1, args.classes + 1)[1:-1], axis=0)
    labels = (signal[None] > edges[:, None]).sum(0)

    sync: Callable[[], None] = lambda: None
    ours, ours_labels = features, labels
    if args.device == "cuda":
        import torch

        ours = torch.as_tensor(features, device="cuda")
        ours_labels = torch.as_tensor(labels, device="cuda")
        sync = torch.cuda.synchronize

    batched_time, batched = _best_time(lambda: h_scores(ours, ours_labels), args.repeat, sync)
    sample = min(args.loop_sample, args.labelings)
    loop_time, looped = _best_time(
        lambda: np.array([h_score(ours, ours_labels[:, j]) for j in range(sample)]),
        args.repeat,
        sync,
    )
    loop_all = loop_time * args.labelings / sample
    error = float(np.max(np.abs(np.asarray(batched)[:sample] - looped)))
    print(
        f"n={args.n} d={args.d} labelings={args.labelings} classes={args.classes} "
        f"device={args.device}"
    )
    print(f"{'h_scores (batched)':<28}{batched_time:10.3f} s")
    print(f"{'h_score per labeling':<28}{loop_all:10.3f} s  (measured on {sample}, scaled)")
    print(f"{'speed-up':<28}{loop_all / batched_time:10.1f} x")
    print(f"{'max |difference|':<28}{error:10.2e}")


if __name__ == "__main__":
    main()
