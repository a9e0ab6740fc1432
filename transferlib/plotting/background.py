"""Figures of the chapter "Background and notation"."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy.stats import rankdata

from transferlib.plotting.style import book_figure, concept_colour

__all__ = ["plot_correlation_vs_noise", "plot_rank_correlations"]


def plot_correlation_vs_noise(
    table: pd.DataFrame,
    noise: str = "redraw probability",
    correlation: str = "HGR maximal correlation",
    entropy: str = "NCE (nats)",
) -> Figure:
    """Plot a correlation (left axis) and an NCE (right axis) against a noise level.

    Parameters
    ----------
    table : DataFrame
        One row per noise level with the columns named by the other arguments.
    noise, correlation, entropy : str
        Column names of the noise level, the correlation in [0, 1] and the NCE in nats.
    """
    fig, left = book_figure(figsize=(6.4, 3.8))
    left.plot(
        table[noise], table[correlation], "o-", color=concept_colour("hgr"), label=correlation
    )
    left.set(xlabel=noise, ylabel=correlation, ylim=(-0.02, 1.02))
    right = left.twinx()
    right.plot(table[noise], table[entropy], "s--", color=concept_colour("nce"), label=entropy)
    right.set_ylabel(entropy)
    right.grid(False)
    right.spines["right"].set_visible(True)
    fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88))
    fig.tight_layout()
    return fig


def plot_rank_correlations(target: np.ndarray, score: np.ndarray) -> Figure:
    """Scatter a score against its target quantity, as values (left) and as ranks (right)."""
    fig, (values, ranks) = book_figure(1, 2, figsize=(8.0, 3.6))
    values.scatter(score, target, color=concept_colour("data"))
    values.set(xlabel="score", ylabel="accuracy", title="values")
    ranks.scatter(rankdata(score), rankdata(target), color=concept_colour("data"))
    ranks.set(xlabel="rank of score", ylabel="rank of accuracy", title="ranks")
    fig.tight_layout()
    return fig
