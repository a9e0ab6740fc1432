"""Figures of the chapter on LEEP (Nguyen et al., ICML 2020), one helper per figure type.

Every helper takes a tidy table from :mod:`transferlib.experiments.leep` and returns a
:class:`matplotlib.figure.Figure` in the book style, already closed in pyplot (so a notebook
shows it only where it glues or displays it); captions are written in the notebooks. Colours
come from the book's concepts (:func:`~transferlib.plotting.style.concept_colour`): transfer
methods, scores and source models keep their colour in every figure; LEEP levels, which are
ordered, use a sequential colour map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from transferlib.evaluation import linear_fit_with_ci
from transferlib.plotting.style import concept_colour, use_book_style

__all__ = [
    "SOURCE_LABELS",
    "plot_convergence",
    "plot_levels",
    "plot_pipeline",
    "plot_properties",
    "plot_score_vs_accuracy",
    "plot_selection",
]

#: How source models are named in titles and legends.
SOURCE_LABELS: dict[str, str] = {
    "efficientnet_lite0": "EfficientNet-Lite0 (ImageNet)",
    "efficientnet_lite1": "EfficientNet-Lite1 (ImageNet)",
    "efficientnet_lite2": "EfficientNet-Lite2 (ImageNet)",
    "resnet20": "ResNet-20 (trained by us)",
    "small_cnn": "small CNN (trained by us)",
    "small_cnn_narrow": "narrow small CNN, 3 epochs",
}
_SCORE_LABELS = {
    "leep": "LEEP",
    "nce": "NCE",
    "h_score": "H-score",
    "imagenet_top1": "ImageNet top-1 (%)",
}


def _figure(figsize: tuple[float, float]) -> Figure:
    use_book_style()
    fig = plt.figure(figsize=figsize)
    plt.close(fig)
    return fig


def _grid(n_panels: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig = _figure((size[0] * ncols, size[1] * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, axes.flat[:n_panels]


def _source_label(name: str) -> str:
    return SOURCE_LABELS.get(name, name)


def _level_colours(n_levels: int) -> list:
    cmap = colormaps["viridis"]
    return [cmap(x) for x in np.linspace(0.05, 0.85, n_levels)]


def plot_score_vs_accuracy(
    table: pd.DataFrame,
    score: str = "leep",
    metric: str = "accuracy",
    *,
    panel: str = "source",
    hue: str = "method",
    metric_label: str = "test accuracy",
) -> Figure:
    """A score against transfer performance, one panel per source (the paper's Fig. 1).

    One point per (task, method); a least-squares line and Pearson r per method.
    """
    groups = list(table.groupby(panel, sort=False))
    fig, axes = _grid(len(groups), 2, (4.6, 3.8))
    for ax, (name, group) in zip(axes, groups):
        for method, part in group.groupby(hue, sort=False):
            x, y = part[score].to_numpy(float), part[metric].to_numpy(float)
            colour = concept_colour(method)
            fit = linear_fit_with_ci(x, y)
            ax.scatter(
                x,
                y,
                s=14,
                color=colour,
                alpha=0.75,
                zorder=3,
                label=f"{method} (r = {fit.r:.2f}, {len(x)} tasks)",
            )
            grid = np.linspace(x.min(), x.max(), 50)
            ax.plot(grid, fit.intercept + fit.slope * grid, color=colour, lw=1.4)
        ax.set_title(_source_label(name), fontsize=10)
        ax.set_xlabel(f"{_SCORE_LABELS.get(score, score)} (nats)" if score == "leep" else score)
        ax.set_ylabel(metric_label)
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_levels(
    levels: pd.DataFrame,
    *,
    panel: Sequence[str] = ("source",),
    hue: str = "method",
    metric_label: str = "mean test accuracy",
    ncols: int = 2,
) -> Figure:
    """Mean performance per LEEP transferability level (the paper's Figs. 2, 3, 6, 7).

    ``levels`` is :func:`~transferlib.experiments.leep.level_table`; one panel per value of the
    ``panel`` columns, grouped bars per level coloured by ``hue``, task counts on the bars.
    """
    keys = list(panel)
    groups = list(levels.groupby(keys, sort=False))
    fig, axes = _grid(len(groups), ncols, (4.4, 3.2))
    for ax, (name, group) in zip(axes, groups):
        name = name if isinstance(name, tuple) else (name,)
        hues = list(dict.fromkeys(group[hue]))
        width = 0.8 / len(hues)
        for i, value in enumerate(hues):
            part = group[group[hue] == value].sort_values("level")
            x = part["level"].to_numpy() + (i - (len(hues) - 1) / 2) * width
            bars = ax.bar(
                x,
                part["mean_metric"].fillna(0.0),
                width=width,
                color=concept_colour(value),
                label=value,
            )
            ax.bar_label(
                bars, labels=[str(c) if c else "" for c in part["count"]], fontsize=6, padding=1
            )
        ax.set_xticks(sorted(group["level"].unique()))
        ax.set_xlabel("LEEP level (1: lowest fifth of the LEEP range)")
        ax.set_ylabel(metric_label)
        ax.set_title(" / ".join(_source_label(str(n)) for n in name), fontsize=9)
        ax.set_ylim(0, 1.08)
    axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def plot_convergence(table: pd.DataFrame, n_levels: int) -> Figure:
    """Fine-tuned minus reference accuracy per epoch, averaged within LEEP levels (Figs. 4, 8).

    One panel per (setting, source); one curve per level; the zero line marks where fine-tuning
    matches the network trained from scratch.
    """
    groups = list(table.groupby(["setting", "source"], sort=False))
    fig, axes = _grid(len(groups), 2, (4.4, 3.2))
    colours = _level_colours(n_levels)
    for ax, ((setting, source), group) in zip(axes, groups):
        curves = group.groupby(["level", "epoch"])["difference"].mean().reset_index()
        counts = group.groupby("level")["task"].nunique()
        for level, curve in curves.groupby("level"):
            ax.plot(
                curve["epoch"],
                curve["difference"],
                marker="o",
                ms=3,
                color=colours[int(level) - 1],
                label=f"level {int(level)} ({counts[level]} tasks)",
            )
        ax.axhline(0, color="0.3", lw=0.8, ls="--")
        ax.set_title(f"{_source_label(source)} → {setting}", fontsize=9)
        ax.set_xlabel("fine-tuning epoch")
        ax.set_ylabel("accuracy − reference accuracy")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_selection(
    table: pd.DataFrame,
    accuracy: str,
    scores: Sequence[str] = ("leep", "nce", "h_score", "imagenet_top1"),
    *,
    accuracy_label: str = "test accuracy",
) -> Figure:
    """Test accuracy of each candidate source against each score (the paper's Figs. 5, 9)."""
    fig, axes = _grid(len(scores), 4, (3.3, 3.2))
    for ax, score in zip(axes, scores):
        part = table[np.isfinite(table[score].to_numpy(float))]
        for _, row in part.iterrows():
            ax.scatter(
                row[score],
                row[accuracy],
                s=40,
                color=concept_colour(row["candidate"]),
                edgecolors="black",
                linewidths=0.5,
                zorder=3,
                label=_source_label(row["candidate"]),
            )
        if len(part) >= 3:
            fit = linear_fit_with_ci(part[score].to_numpy(float), part[accuracy].to_numpy(float))
            ax.set_title(f"{_SCORE_LABELS.get(score, score)}: r = {fit.r:.2f}", fontsize=9)
        else:
            ax.set_title(_SCORE_LABELS.get(score, score), fontsize=9)
        ax.set_xlabel(_SCORE_LABELS.get(score, score))
        ax.set_ylabel(accuracy_label)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.86))
    return fig


def plot_properties(table: pd.DataFrame) -> Figure:
    """Properties 1 and 2 on every task: LEEP against its two bounds, one point per task.

    Left: the re-trained head's training log-likelihood (or the converged logistic head's, where
    that is larger) against LEEP; Property 1 holds above the diagonal. Right: LEEP against
    NCE + mean log theta(x)_z; Property 2 holds above the diagonal.
    """
    fig, axes = _grid(2, 2, (4.3, 3.9))
    upper = table[["head_train_log_likelihood", "converged_train_log_likelihood"]].max(axis=1)
    pairs = [
        (
            table["leep"],
            upper,
            "LEEP (nats)",
            "best head training log-likelihood (nats)",
            "Property 1: LEEP ≤ head log-likelihood",
        ),
        (
            table["property2_bound"],
            table["leep"],
            "NCE + mean log θ(x)_z (nats)",
            "LEEP (nats)",
            "Property 2: LEEP ≥ NCE + mean log θ(x)_z",
        ),
    ]
    for ax, (x, y, xlabel, ylabel, title) in zip(axes, pairs):
        for source, part in table.groupby("source", sort=False):
            index = part.index
            ax.scatter(
                x[index],
                y[index],
                s=10,
                alpha=0.6,
                color=concept_colour(source),
                label=_source_label(source),
            )
        lo = float(min(x.min(), y.min()))
        hi = float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--", label="equality")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_pipeline(steps: Mapping[str, str] | None = None) -> Figure:
    """The LEEP computation as a pipeline in two rows: one forward pass, then counting."""
    steps = steps or {
        "target data\n$(x_i, y_i)$, $i = 1, \\dots, n$": "the labelled target set",
        "source model θ\none forward pass": "dummy distributions θ(x_i)\nover source labels z",
        "joint $\\hat P(y, z)$\n$\\frac{1}{n}\\sum_{i: y_i = y} θ(x_i)_z$": "Eq. (1): soft counts",
        "conditional $\\hat P(y \\mid z)$\n$\\hat P(y, z) \\,/\\, \\hat P(z)$": "no training",
        "EEP $p(y \\mid x)$\n$\\sum_z \\hat P(y \\mid z)\\, θ(x)_z$": "a classifier for y",
        "LEEP\n$\\frac{1}{n}\\sum_i \\log p(y_i \\mid x_i)$": "Eq. (2): its mean\nlog-likelihood",
    }
    per_row = (len(steps) + 1) // 2
    fig = _figure((8.4, 4.4))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_xlim(0, per_row)
    ax.set_ylim(0, 2)
    highlight = {1: concept_colour("efficientnet_lite0"), len(steps) - 1: concept_colour("leep")}
    for i, (title, note) in enumerate(steps.items()):
        row, col = divmod(i, per_row)
        x, y = col, 1 - row  # first row on top
        box = FancyBboxPatch(
            (x + 0.07, y + 0.32),
            0.86,
            0.56,
            boxstyle="round,pad=0.02",
            facecolor=highlight.get(i, "#F2F2F2"),
            edgecolor="0.3",
            alpha=0.35 if i in highlight else 1.0,
        )
        ax.add_patch(box)
        ax.text(x + 0.5, y + 0.6, title, ha="center", va="center", fontsize=10)
        ax.text(x + 0.5, y + 0.15, note, ha="center", va="center", fontsize=8.5, color="0.25")
        if col < per_row - 1 and i < len(steps) - 1:
            ax.annotate(
                "",
                xy=(x + 1.07, y + 0.6),
                xytext=(x + 0.93, y + 0.6),
                arrowprops={"arrowstyle": "->", "color": "0.3"},
            )
    # from the end of the first row to the start of the second
    ax.annotate(
        "",
        xy=(0.5, 0.88),
        xytext=(per_row - 0.5, 1.32),
        arrowprops={"arrowstyle": "->", "color": "0.3", "connectionstyle": "arc3,rad=-0.15"},
    )
    fig.tight_layout()
    return fig
