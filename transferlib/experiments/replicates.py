"""Replicate runs of an experiment, for the spread over seeds that decides small differences.

A replicate is a whole run with its own seed: its own rendering of the data, its own train/test
split, initialisations and batch orders. Replicate seeds are drawn from a named stream of the
run's seed, so the replicates of seed 0 and those of seed 1 never share a run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from transferlib.config import RunParams
from transferlib.experiments.presets import stream_seed

__all__ = ["over_seeds", "replicate_runs", "spread"]


def replicate_runs(run: RunParams, n_seeds: int) -> list[RunParams]:
    """``run`` itself, then ``n_seeds - 1`` runs whose seeds come from its ``"replicate"`` stream.

    The first replicate is ``run`` unchanged, so a page that shows one run and a page that shows
    the spread share that run's cached networks and rows.
    """
    if isinstance(n_seeds, bool) or not isinstance(n_seeds, int) or n_seeds < 1:
        raise ValueError(f"n_seeds must be a positive integer, got {n_seeds!r}")
    seeds = [run.seed] + [stream_seed(run.seed, "replicate", k) for k in range(1, n_seeds)]
    return [dataclasses.replace(run, seed=seed) for seed in seeds]


def over_seeds(
    runner: Callable[..., pd.DataFrame],
    run: RunParams,
    preset: Any,
    n_seeds: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """``runner(run, preset, **options)`` on every replicate run, stacked with a ``seed`` column.

    ``n_seeds`` defaults to ``preset.n_seeds``.
    """
    n_seeds = preset.n_seeds if n_seeds is None else n_seeds
    tables = [
        runner(r, preset, **options).assign(seed=r.seed) for r in replicate_runs(run, n_seeds)
    ]
    return pd.concat(tables, ignore_index=True)


def spread(table: pd.DataFrame, by: str | Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Mean and standard deviation over seeds of ``values``, per group ``by``.

    Returns
    -------
    DataFrame
        ``by`` columns, then ``<value>`` (the mean) and ``<value>_sd`` (the sample standard
        deviation over the seeds; NaN for one seed) for each value, and ``n_seeds``.
    """
    by = [by] if isinstance(by, str) else list(by)
    grouped = table.groupby(by, sort=False)[list(values)]
    means, sds = grouped.mean(), grouped.std(ddof=1).add_suffix("_sd")
    counts = table.groupby(by, sort=False).size().rename("n_seeds")
    return pd.concat([means, sds, counts], axis=1).reset_index()
