"""Time every transferability score against a straightforward textbook implementation.

Plain script, e.g. (the size the speed targets refer to):

    nice python benchmarks/bench_scores.py --n 5000 --d 2048 --classes 100 \
        --source-classes 1000 --repeat 3

It prints, per score, the best-of-``--repeat`` wall time of ``transferlib.scores``, the
time of a textbook form (per-class Python loops, ``np.linalg.pinv``, dense
log-determinants: the way the formulas are usually transcribed), their ratio, and the
relative difference of the two values as a sanity check. Textbook forms are NumPy
only; with ``--device cuda`` they still run on the CPU.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from scipy.special import softmax

from transferlib import scores


def _textbook_nce(y: np.ndarray, z: np.ndarray) -> float:
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


def _textbook_h_score(x: np.ndarray, y: np.ndarray) -> float:
    cov_f = np.cov(x, rowvar=False, bias=True)
    g = np.zeros_like(x)
    for c in np.unique(y):
        g[y == c] = x[y == c].mean(0)
    cov_g = np.cov(g, rowvar=False, bias=True)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ cov_g))


def _textbook_shrinkage_h_score(x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.covariance import ledoit_wolf

    cov_f, alpha = ledoit_wolf(x)
    g = np.zeros_like(x)
    for c in np.unique(y):
        g[y == c] = x[y == c].mean(0)
    cov_g = np.cov(g, rowvar=False, bias=True)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-15) @ ((1 - alpha) * cov_g)))


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
        log_det = np.sum(np.log(alpha + beta * sigma)) + (d - sigma.size) * np.log(alpha)
        evidences.append(
            0.5 * n * np.log(beta)
            + 0.5 * d * np.log(alpha)
            - 0.5 * n * np.log(2 * np.pi)
            - 0.5 * beta * res2
            - 0.5 * alpha * m2
            - 0.5 * log_det
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


def _best_time(
    function: Callable[[], float], repeat: int, sync: Callable[[], None]
) -> tuple[float, float]:
    times, value = [], float("nan")
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        value = function()
        sync()
        times.append(time.perf_counter() - start)
    return min(times), value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--source-classes", type=int, default=1000)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-textbook", action="store_true", help="skip the slow reference forms")
    parser.add_argument("--nleep", action="store_true", help="also time N-LEEP (slow: EM)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

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

    cases: list[tuple[str, Callable[[], float], Callable[[], float] | None]] = [
        ("nce", lambda: scores.nce(y, source_labels), lambda: _textbook_nce(y, source_labels)),
        ("leep", lambda: scores.leep(ours_probs, ours_labels), lambda: _textbook_leep(probs, y)),
        (
            "h_score",
            lambda: scores.h_score(ours_features, ours_labels),
            lambda: _textbook_h_score(features, y),
        ),
        (
            "shrinkage_h_score",
            lambda: scores.shrinkage_h_score(ours_features, ours_labels),
            lambda: _textbook_shrinkage_h_score(features, y),
        ),
        (
            "logme",
            lambda: scores.logme(ours_features, ours_labels),
            lambda: _textbook_logme(features, y),
        ),
        (
            "transrate",
            lambda: scores.transrate(ours_features, ours_labels),
            lambda: _textbook_transrate(features, y),
        ),
        ("gbc", lambda: scores.gbc(ours_features, ours_labels), lambda: _textbook_gbc(features, y)),
    ]
    if args.nleep:
        cases.append(
            (
                "nleep",
                lambda: scores.nleep(ours_features, ours_labels, covariance_type="diag"),
                None,
            )
        )

    print(
        f"n={args.n} d={args.d} classes={args.classes} source_classes={args.source_classes} "
        f"device={args.device} float64, best of {args.repeat}"
    )
    header = f"{'score':<19}{'ours [s]':>10}{'textbook [s]':>14}{'ratio':>8}{'rel. diff':>11}"
    print(header)
    print("-" * len(header))
    for name, ours, textbook in cases:
        ours_time, ours_value = _best_time(ours, args.repeat, sync)
        if textbook is None or args.no_textbook:
            print(f"{name:<19}{ours_time:>10.4f}{'-':>14}{'-':>8}{'-':>11}")
            continue
        book_time, book_value = _best_time(textbook, 1, lambda: None)
        difference = abs(ours_value - book_value) / max(abs(book_value), 1e-300)
        print(
            f"{name:<19}{ours_time:>10.4f}{book_time:>14.4f}{book_time / ours_time:>8.1f}"
            f"{difference:>11.1e}"
        )


if __name__ == "__main__":
    main()
