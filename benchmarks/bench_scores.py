"""Time every transferability score against its arithmetic floor, a textbook form and the
peers' forms, all measured in the same run.

Plain script, e.g. (the size the speed targets refer to):

    nice python benchmarks/bench_scores.py --n 5000 --d 2048 --classes 100 \
        --source-classes 1000 --repeat 5 --out scores.md

Per score it prints the best-of-``--repeat`` time (``--clock``: wall, or the process's CPU
time, steadier on a shared machine with one BLAS thread) of ``transferlib.scores``; the
floor, the best-of-``--repeat`` time of the linear algebra the formula cannot avoid; and
the time of a reference form (best of one) with the ratio reference/ours and the relative
difference of the two values as a sanity check. Floors:

- H-score, shrinkage H-score, normalised transferability, TransRate: the (d, d) Gram
  product ``X.T @ X`` plus one Cholesky factorisation of it (a log-determinant or a solve);
- LogME: the Gram product plus one symmetric eigendecomposition;
- GBC: one pass over the features (their sum) plus one logarithm per class pair and
  dimension, the terms of the Bhattacharyya distances as written (``gbc`` itself takes one
  logarithm per product of up to 16 of them, so it can beat this floor on the pairs);
- LEEP: one read of the (n, |Z|) probability matrix (its sum);
- NCE: one ``bincount`` of the n joint label codes.

References: LEEP's "array route" is ``leep`` without its compiled loops (the route of
NumPy input under 2**22 entries and of tensors). "textbook" forms transcribe the formulas
directly (per-class Python loops, ``np.linalg.pinv``, dense log-determinants); "TLlib" forms re-implement, from their
published descriptions, TLlib's H-score (``np.cov`` of the features and of the class-mean
matrix, ``pinv`` with rcond 1e-15, a dense product and its trace) and the LogME
repository's / TLlib's LogME (SVD of F^T F, then per class at most 11 fixed-point steps in
the feature basis, each O(nD + D^2), stopping at a 1% change of alpha/beta; NumPy here,
where the originals compile the per-class loop with numba). Reference forms are NumPy
only (LEEP's array route excepted); with ``--device cuda`` they still run on the CPU.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.linalg import cholesky
from scipy.special import softmax

from transferlib import scores

# -- reference forms ---------------------------------------------------------------------


def _textbook_nce(z: np.ndarray, y: np.ndarray) -> float:
    total = 0.0
    for source in np.unique(z):
        in_z = y[z == source]
        p = np.unique(in_z, return_counts=True)[1] / in_z.size
        total += in_z.size / y.size * -(p * np.log(p)).sum()
    return -total


def _textbook_leep(probs: np.ndarray, y: np.ndarray) -> float:
    classes = np.unique(y)
    joint = np.stack([probs[y == c].sum(0) for c in classes]) / len(y)
    conditional = joint / joint.sum(0, keepdims=True)
    eep = probs @ conditional.T
    return float(np.mean(np.log(eep[np.arange(len(y)), np.searchsorted(classes, y)])))


def _leep_array_route(probs, y) -> float:
    """``scores.leep`` with its compiled loops switched off: the route that smaller NumPy
    input and tensors take."""
    module = importlib.import_module("transferlib.scores.leep")
    threshold = module._COMPILED_MIN_ENTRIES
    module._COMPILED_MIN_ENTRIES = np.iinfo(np.int64).max
    try:
        return scores.leep(probs, y)
    finally:
        module._COMPILED_MIN_ENTRIES = threshold


def _class_mean_matrix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    g = np.zeros_like(x)
    for c in np.unique(y):
        g[y == c] = x[y == c].mean(0)
    return g


def _textbook_h_score(x: np.ndarray, y: np.ndarray) -> float:
    cov_f = np.cov(x, rowvar=False, bias=True)
    cov_g = np.cov(_class_mean_matrix(x, y), rowvar=False, bias=True)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ cov_g))


def _tllib_h_score(x: np.ndarray, y: np.ndarray) -> float:
    """TLlib's form: unbiased np.cov of both (the n - 1 cancels), pinv(rcond=1e-15)."""
    cov_f = np.cov(x, rowvar=False)
    cov_g = np.cov(_class_mean_matrix(x, y), rowvar=False)
    return float(np.trace(np.dot(np.linalg.pinv(cov_f, rcond=1e-15), cov_g)))


def _textbook_shrinkage_h_score(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.covariance import ledoit_wolf

    cov_f, alpha = ledoit_wolf(x)
    cov_g = np.cov(_class_mean_matrix(x, y), rowvar=False, bias=True)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ ((1 - alpha) * cov_g)))


def _evidence(n: int, d: int, alpha, beta, sigma, residual2, m2) -> float:
    return (
        0.5 * n * np.log(beta)
        + 0.5 * d * np.log(alpha)
        - 0.5 * n * np.log(2 * np.pi)
        - 0.5 * beta * residual2
        - 0.5 * alpha * m2
        - 0.5 * (np.sum(np.log(alpha + beta * sigma)) + (d - sigma.size) * np.log(alpha))
    )


def _textbook_logme(x: np.ndarray, y: np.ndarray) -> float:
    """One SVD, then a Python loop over classes with scalar fixed-point iterations."""
    n, d = x.shape
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    sigma = s**2
    evidences = []
    for c in np.unique(y):
        t = (y == c).astype(np.float64)
        z = u.T @ t
        outside = t @ t - z @ z
        alpha, beta = 1.0, 1.0
        for _ in range(1000):
            gamma = np.sum(beta * sigma / (alpha + beta * sigma))
            m2 = np.sum(beta**2 * sigma * z**2 / (alpha + beta * sigma) ** 2)
            res2 = np.sum((alpha * z / (alpha + beta * sigma)) ** 2) + outside
            new_alpha, new_beta = gamma / m2, (n - gamma) / res2
            done = abs(new_alpha / new_beta - alpha / beta) / (alpha / beta) < 1e-10
            alpha, beta = new_alpha, new_beta
            if done:
                break
        m2 = np.sum(beta**2 * sigma * z**2 / (alpha + beta * sigma) ** 2)
        res2 = np.sum((alpha * z / (alpha + beta * sigma)) ** 2) + outside
        evidences.append(_evidence(n, d, alpha, beta, sigma, res2, m2))
    return float(np.mean(evidences) / n)


def _tllib_logme(x: np.ndarray, y: np.ndarray) -> float:
    """TLlib's / the LogME repository's form: SVD of F^T F; per class, at most 11 steps in
    the feature basis (m = V diag(.) V^T F^T y, residual through F m), stopping when
    alpha/beta moves by less than 1%; log|A| over all D singular values."""
    n, d = x.shape
    v, s, vh = np.linalg.svd(x.T @ x, full_matrices=True)
    evidences = []
    for c in np.unique(y):
        t = (y == c).astype(np.float64)
        projected = vh @ (x.T @ t)
        alpha, beta = 1.0, 1.0
        ratio = alpha / beta
        for _ in range(11):
            gamma = (s / (s + ratio)).sum()
            m = v @ (projected * beta / (alpha + beta * s))
            m2 = (m * m).sum()
            residual2 = ((t - x @ m) ** 2).sum()
            alpha, beta = gamma / m2, (n - gamma) / residual2
            new_ratio = alpha / beta
            if abs(new_ratio - ratio) / ratio < 0.01:
                break
            ratio = new_ratio
        evidences.append(
            0.5 * d * np.log(alpha)
            + 0.5 * n * np.log(beta)
            - 0.5 * np.sum(np.log(alpha + beta * s))
            - 0.5 * beta * residual2
            - 0.5 * alpha * m2
            - 0.5 * n * np.log(2 * np.pi)
        )
    return float(np.mean(evidences) / n)


def _textbook_transrate(x: np.ndarray, y: np.ndarray, eps: float = 1e-2) -> float:
    def rate(z: np.ndarray) -> float:
        m, d = z.shape
        return 0.5 * np.linalg.slogdet(np.eye(d) + z.T @ z / (m * eps**2))[1]

    z = x - x.mean(0)
    return rate(z) - sum(np.mean(y == c) * rate(z[y == c]) for c in np.unique(y))


def _textbook_gbc(x: np.ndarray, y: np.ndarray) -> float:
    classes = np.unique(y)
    floor = 1e-8 * x.var(0).mean()
    means = [x[y == c].mean(0) for c in classes]
    variances = [x[y == c].var(0) + floor for c in classes]
    total = 0.0
    for i in range(len(classes)):
        for j in range(len(classes)):
            if i != j:
                s = 0.5 * (variances[i] + variances[j])
                distance = 0.125 * np.sum((means[i] - means[j]) ** 2 / s) + 0.5 * np.sum(
                    np.log(s) - 0.5 * np.log(variances[i]) - 0.5 * np.log(variances[j])
                )
                total += np.exp(-distance)
    return -total


# -- floors ------------------------------------------------------------------------------


def _gram_and_cholesky(x: np.ndarray) -> None:
    gram = x.T @ x
    cholesky(gram, lower=True, check_finite=False, overwrite_a=True)


def _gram_and_eigh(x: np.ndarray) -> None:
    np.linalg.eigh(x.T @ x)


def _read_and_pair_logs(x, k: int, block) -> None:
    """One read of the features, then one logarithm per class pair and dimension (of
    varied values, as the pair variances are: a repeated constant would flatter the log).
    NumPy arrays or torch tensors (``log`` with ``out=`` works on both)."""
    x.sum()
    if isinstance(block, np.ndarray):
        out, log = np.empty_like(block), np.log
    else:
        import torch

        out, log = torch.empty_like(block), torch.log
    for _ in range(0, k * (k - 1) // 2, block.shape[0]):
        log(block, out=out)


# -- measurement -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    score: str
    ours: float
    floor: float | None
    reference: str
    reference_time: float | None
    rel_diff: float | None

    def cells(self) -> list[str]:
        def fmt(value: float | None, spec: str) -> str:
            return "-" if value is None else format(value, spec)

        ratio = None if self.floor is None else self.ours / self.floor
        speedup = None if self.reference_time is None else self.reference_time / self.ours
        return [
            self.score,
            fmt(self.ours, ".4f"),
            fmt(self.floor, ".4f"),
            fmt(ratio, ".2f"),
            self.reference,
            fmt(self.reference_time, ".4f"),
            fmt(speedup, ".1f"),
            fmt(self.rel_diff, ".1e"),
        ]


HEADER = [
    "score",
    "ours [s]",
    "floor [s]",
    "ours/floor",
    "reference",
    "ref. [s]",
    "ref./ours",
    "rel. diff",
]


_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def _best_time(
    function: Callable[[], object],
    repeat: int,
    sync: Callable[[], None],
    clock: Callable[[], float],
) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeat):
        sync()
        start = clock()
        value = function()
        sync()
        times.append(clock() - start)
    return min(times), value


def _write(rows: list[Row], path: Path, title: str) -> None:
    if path.suffix == ".csv":
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows(row.cells() for row in rows)
        return
    lines = [title, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--source-classes", type=int, default=1000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow reference forms")
    parser.add_argument("--nleep", action="store_true", help="also time N-LEEP (slow: EM)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the table (.csv, else markdown)")
    parser.add_argument("--only", help="comma-separated scores to time (default: all)")
    parser.add_argument(
        "--clock",
        choices=tuple(_CLOCKS),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a shared machine when BLAS "
        "runs one thread: OPENBLAS_NUM_THREADS=1)",
    )
    args = parser.parse_args(argv)
    clock = _CLOCKS[args.clock]

    rng = np.random.default_rng(args.seed)
    y = rng.permutation(np.arange(args.n) % args.classes)
    centres = rng.standard_normal((args.classes, args.d)) * 0.3
    features = centres[y] + rng.standard_normal((args.n, args.d))
    source_map = rng.integers(0, args.source_classes, args.classes)
    logits = rng.standard_normal((args.n, args.source_classes))
    logits[np.arange(args.n), source_map[y]] += 4.0
    probs = softmax(logits, axis=1)
    source_labels = probs.argmax(1)

    sync: Callable[[], None] = lambda: None
    ours_features, ours_probs, ours_labels = features, probs, y
    if args.device == "cuda":
        import torch

        ours_features = torch.as_tensor(features, device="cuda")
        ours_probs = torch.as_tensor(probs, device="cuda")
        ours_labels = torch.as_tensor(y, device="cuda")
        sync = torch.cuda.synchronize

    def nce_floor() -> None:
        np.bincount(source_labels * args.classes + y)

    log_block = rng.uniform(0.5, 2.0, (max(1, 65536 // args.d), args.d))
    gram_chol = lambda: _gram_and_cholesky(features)
    gram_eigh = lambda: _gram_and_eigh(features)
    probs_read = probs.sum
    pair_logs = lambda: _read_and_pair_logs(features, args.classes, log_block)
    if args.device == "cuda":  # the floors on the device the scores run on
        block = torch.as_tensor(log_block, device="cuda")
        gram_chol = lambda: torch.linalg.cholesky(ours_features.T @ ours_features)
        gram_eigh = lambda: torch.linalg.eigh(ours_features.T @ ours_features)
        probs_read = ours_probs.sum
        pair_logs = lambda: _read_and_pair_logs(ours_features, args.classes, block)
    textbook, tllib = "textbook", "TLlib"
    cases: list[tuple[str, Callable[[], float], Callable[[], object] | None, list]] = [
        (
            "nce",
            lambda: scores.nce(source_labels, y),
            nce_floor,
            [(textbook, lambda: _textbook_nce(source_labels, y))],
        ),
        (
            "leep",
            lambda: scores.leep(ours_probs, ours_labels),
            probs_read,
            [
                (textbook, lambda: _textbook_leep(probs, y)),
                ("array route", lambda: _leep_array_route(ours_probs, ours_labels)),
            ],
        ),
        (
            "h_score",
            lambda: scores.h_score(ours_features, ours_labels),
            gram_chol,
            [
                (textbook, lambda: _textbook_h_score(features, y)),
                (tllib, lambda: _tllib_h_score(features, y)),
            ],
        ),
        (
            "shrinkage_h_score",
            lambda: scores.shrinkage_h_score(ours_features, ours_labels),
            gram_chol,
            [(textbook, lambda: _textbook_shrinkage_h_score(features, y))],
        ),
        (
            "h_score_transferability",
            lambda: scores.h_score_transferability(ours_features, ours_labels),
            gram_chol,
            [],
        ),
        (
            "logme",
            lambda: scores.logme(ours_features, ours_labels),
            gram_eigh,
            [
                (textbook, lambda: _textbook_logme(features, y)),
                (tllib, lambda: _tllib_logme(features, y)),
            ],
        ),
        (
            "transrate",
            lambda: scores.transrate(ours_features, ours_labels),
            gram_chol,
            [(textbook, lambda: _textbook_transrate(features, y))],
        ),
        (
            "gbc",
            lambda: scores.gbc(ours_features, ours_labels),
            pair_logs,
            [(textbook, lambda: _textbook_gbc(features, y))],
        ),
    ]
    if args.nleep:
        nleep = lambda: scores.nleep(ours_features, ours_labels, covariance_type="diag")
        cases.append(("nleep", nleep, None, []))

    if args.only:
        cases = [case for case in cases if case[0] in args.only.split(",")]
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    title = (
        f"n={args.n} d={args.d} classes={args.classes} source_classes={args.source_classes} "
        f"device={args.device} float64, best of {args.repeat} ({args.clock} time, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}); "
        f"load average {load}"
    )
    print(title)
    widths = [24, 10, 10, 11, 13, 10, 10, 10]
    print("".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(HEADER, widths))))
    rows: list[Row] = []
    for name, ours, floor, references in cases:
        ours_time, ours_value = _best_time(ours, args.repeat, sync, clock)
        floor_time = None if floor is None else _best_time(floor, args.repeat, sync, clock)[0]
        compared = [] if args.no_reference else references
        new = [Row(name, ours_time, floor_time, "-", None, None)] if not compared else []
        for label, reference in compared:
            ref_time, ref_value = _best_time(reference, 1, lambda: None, clock)
            difference = abs(ours_value - ref_value) / max(abs(ref_value), 1e-300)
            new.append(Row(name, ours_time, floor_time, label, ref_time, difference))
        for row in new:
            cells = row.cells()
            print(
                "".join(
                    c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))
                )
            )
        rows += new
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average after the run: {load}")
    if args.out is not None:
        _write(rows, args.out, title + f"; load average after: {load}")


if __name__ == "__main__":
    main()
