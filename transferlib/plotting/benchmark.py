"""Figures of the benchmark chapter ("Which estimator should I use?"), one helper per figure type.

Every helper takes a tidy table from :mod:`transferlib.experiments.benchmark` and returns a
:class:`matplotlib.figure.Figure` in the book style, already closed in pyplot. Captions are
written in the notebooks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from transferlib.plotting.style import book_figure, concept_colour

__all__ = ["MEASURE_LABELS", "plot_measure_heatmap", "plot_pipeline", "plot_score_timing"]

#: Axis labels of the measures of :func:`transferlib.experiments.benchmark.score_measures`.
MEASURE_LABELS = {
    "pearson": "Pearson r",
    "tau_w": "weighted Kendall τ_w",
    "relative_accuracy": "relative accuracy of the pick",
    "regret": "regret of the pick (accuracy points)",
}


def plot_measure_heatmap(
    measures: pd.DataFrame,
    measure: str = "tau_w",
    *,
    scores: Sequence[str] | None = None,
    sweeps: Sequence[str] | None = None,
    winners: pd.DataFrame | None = None,
) -> Figure:
    """Heatmap of one measure, score (rows) by sweep (columns), values written in the cells.

    Cells without a value (a score that does not apply to a sweep, a measure that is not
    defined on it) are grey and read "n/a"; a sweep's winner (``winners``, from
    :func:`~transferlib.experiments.benchmark.winners`) is framed.
    """
    if measure not in MEASURE_LABELS:
        raise ValueError(f"measure must be one of {list(MEASURE_LABELS)}, got {measure!r}")
    scores = list(dict.fromkeys(measures["score"])) if scores is None else list(scores)
    sweeps = list(dict.fromkeys(measures["sweep"])) if sweeps is None else list(sweeps)
    grid = measures.pivot(index="score", columns="sweep", values=measure).reindex(
        index=scores, columns=sweeps
    )
    values = grid.to_numpy(float)
    signed = measure in ("pearson", "tau_w")
    fig, ax = book_figure(figsize=(0.42 * len(sweeps) + 2.6, 0.36 * len(scores) + 2.4))
    cmap = "RdBu" if signed else ("Reds" if measure == "regret" else "Greens")
    limits = (-1.0, 1.0) if signed else (0.0, 1.0)
    if measure == "regret" and np.isfinite(values).any() and np.nanmax(values) > 0:
        limits = (0.0, float(np.nanmax(values)))
    masked = np.ma.masked_invalid(values)
    image = ax.imshow(masked, cmap=cmap, vmin=limits[0], vmax=limits[1], aspect="auto")
    image.cmap.set_bad("#E0E0E0")
    for (i, j), value in np.ndenumerate(values):
        text = "n/a" if not np.isfinite(value) else f"{value:.2f}".replace("0.", ".", 1)
        strong = np.isfinite(value) and abs(value) > 0.6 * max(abs(limits[0]), limits[1])
        ax.text(j, i, text, ha="center", va="center", fontsize=6.5,
                color="white" if strong else "#333333")  # fmt: skip
    if winners is not None:
        for _, row in winners[winners["winner"] != "none"].iterrows():
            for name in row["winner"].split(" = "):
                if row["sweep"] in sweeps and name in scores:
                    ax.add_patch(_frame(scores.index(name), sweeps.index(row["sweep"])))
    ax.set_xticks(range(len(sweeps)), sweeps, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(scores)), scores, fontsize=8)
    for label in ax.get_yticklabels():
        label.set_color(concept_colour(label.get_text()))
    ax.grid(False)
    fig.colorbar(image, ax=ax, label=MEASURE_LABELS[measure], shrink=0.8)
    return fig


def _frame(i: int, j: int) -> object:
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=1.6)


def plot_score_timing(timing: pd.DataFrame) -> Figure:
    """Wall time per task of each score (log scale), one point per chapter's inputs.

    ``timing`` is :func:`~transferlib.experiments.benchmark.timing_table`; each score is drawn
    in its book colour, each chapter with its own marker, scores sorted by their median time.
    """
    markers = dict(zip(dict.fromkeys(timing["chapter"]), "osD^v<>"))
    order = timing.groupby("score")["seconds_per_item"].median().sort_values().index.tolist()
    fig, ax = book_figure(figsize=(6.4, 0.32 * len(order) + 1.4))
    for chapter, part in timing.groupby("chapter", sort=False):
        y = [order.index(s) for s in part["score"]]
        ax.scatter(part["seconds_per_item"], y, marker=markers[chapter],
                   c=[concept_colour(s) for s in part["score"]], edgecolors="#333333",
                   linewidths=0.5, s=34, label=f"{chapter} inputs", zorder=3)  # fmt: skip
    ax.set_xscale("log")
    ax.set_yticks(range(len(order)), order)
    for label in ax.get_yticklabels():
        label.set_color(concept_colour(label.get_text()))
    ax.set_xlabel("wall time per task (seconds, log scale)")
    legend = ax.legend(loc="lower right", fontsize=7)
    for handle in legend.legend_handles:
        handle.set_facecolor("white")
    return fig


def plot_pipeline() -> Figure:
    """The benchmark's pipeline: cached chapter sweeps, their inputs, every score, measures."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = book_figure(figsize=(8.6, 2.2))
    ax.set_position((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 2.2)
    ax.set_axis_off()
    steps = [
        "chapter sweeps\n(cached runners):\nmeasured accuracy",
        "the chapter's\nscore inputs:\nlabels, probs,\nfeatures",
        "every score in\nSCORES, timed,\non the same\ninputs",
        "per sweep: r, τ_w,\nregret; bootstrap\nover target tasks",
        "heatmap, wall\ntime, winners\n(stated rule)",
    ]
    width, gap = 1.7, 0.35
    for i, text in enumerate(steps):
        x = 0.1 + i * (width + gap)
        ax.add_patch(FancyBboxPatch((x, 0.45), width, 1.3, boxstyle="round,pad=0.05",
                                    facecolor="#DDEBF7" if i == 2 else "#F2F2F2",
                                    edgecolor="#555555"))  # fmt: skip
        ax.text(x + width / 2, 1.1, text, ha="center", va="center", fontsize=8)
        if i:
            ax.add_patch(FancyArrowPatch((x - gap, 1.1), (x, 1.1), arrowstyle="-|>",
                                         mutation_scale=10, color="#333333"))  # fmt: skip
    ax.text(5.0, 0.15, "only the scores are computed here; networks, heads and fine-tuning "
            "come from the chapters' caches", ha="center", fontsize=7, style="italic")  # fmt: skip
    return fig
