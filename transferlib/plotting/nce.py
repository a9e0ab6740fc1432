"""Figures of the chapter on Tran, Nguyen & Hassner (ICCV 2019), one helper per figure type.

Every helper takes a tidy table from :mod:`transferlib.experiments.nce` and returns a
:class:`matplotlib.figure.Figure` in the book style; captions are written in the notebooks.
Figures are closed in pyplot before they are returned, so a notebook shows them only where it
glues or displays them (pyplot shows every open figure at the end of a cell).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from transferlib.evaluation import linear_fit_with_ci
from transferlib.plotting.style import PALETTE, use_book_style
from transferlib.scores import conditional_entropy

__all__ = [
    "plot_correlation_distribution",
    "plot_correlation_panels",
    "plot_label_sequences",
    "plot_theorem_check",
    "plot_training_size_curve",
    "plot_transfer_gain",
]


def _figure(figsize: tuple[float, float]) -> Figure:
    """A new figure in the book style, already closed in pyplot (see the module docstring)."""
    use_book_style()
    fig = plt.figure(figsize=figsize)
    plt.close(fig)
    return fig


def _grid(n_panels: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    use_book_style()
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig = _figure((size[0] * ncols, size[1] * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, axes.flat[:n_panels]


def _colours(values: Sequence[str]) -> dict[str, str]:
    return {v: PALETTE[i % len(PALETTE)] for i, v in enumerate(dict.fromkeys(values))}


def plot_label_sequences(
    examples: Mapping[str, tuple[Sequence[int], Sequence[int]]], ncols: int = 3
) -> Figure:
    """Toy label sequences in the spirit of the paper's Figure 1.

    Parameters
    ----------
    examples : mapping of title to (source labels Z, target labels Y)
        Each pair is drawn as two rows of coloured cells over the instances, titled with
        ``H(Y|Z)`` in nats and in multiples of ``log 2``.
    ncols : int
        Panels per row.
    """
    fig, axes = _grid(len(examples), ncols, (3.2, 1.6))
    for ax, (title, (z, y)) in zip(axes, examples.items()):
        z, y = np.asarray(z), np.asarray(y)
        ax.imshow(np.vstack([y, z]), aspect="auto", cmap="tab10", vmin=0, vmax=9)
        for row, values in enumerate((y, z)):
            for i, v in enumerate(values):
                ax.text(i, row, str(v), ha="center", va="center", fontsize=8, color="white")
        ce = conditional_entropy(y, z)
        ax.set_title(f"{title}\nH(Y|Z) = {ce:.3f} nats = {ce / np.log(2):.2f} log 2", fontsize=9)
        ax.set_yticks([0, 1], ["Y (target)", "Z (source)"])
        ax.set_xticks([])
        ax.grid(False)
    fig.tight_layout()
    return fig


def plot_theorem_check(table: pd.DataFrame) -> Figure:
    """Transferred training log-likelihood against the Theorem-1 bound ``l_Z - H(Y|Z)``.

    Filled markers: the optimum over ``K' + {k-bar}`` (what the theorem bounds); hollow
    markers: the logistic head alone. Points above the diagonal satisfy the bound.
    """
    use_book_style()
    fig = _figure((5.2, 4.6))
    ax = fig.subplots()
    colours = _colours(table["source"])
    for source, group in table.groupby("source", sort=False):
        ax.scatter(group["bound"], group["transferred_log_likelihood"], color=colours[source],
                   label=f"source: {source}", zorder=3)
        ax.scatter(group["bound"], group["head_log_likelihood"], facecolors="none",
                   edgecolors=colours[source], zorder=2)
    values = table[["bound", "transferred_log_likelihood", "head_log_likelihood"]].to_numpy(float)
    finite = values[np.isfinite(values)]
    lo, hi = finite.min(), max(finite.max(), 0.0)
    pad = 0.05 * (hi - lo + 1e-9)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", lw=1, ls="--",
            label="bound = achieved")
    ax.scatter([], [], facecolors="none", edgecolors="0.3", label="logistic head alone")
    ax.set_xlabel(r"bound $l_Z - H(Y|Z)$ (nats per image)")
    ax.set_ylabel(r"transferred training log-likelihood $l_Y$ (nats)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_correlation_panels(
    table: pd.DataFrame,
    x: str,
    y: str,
    panel: str | None = None,
    hue: str | None = None,
    annotate: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    ncols: int = 3,
    max_panels: int | None = None,
) -> Figure:
    """Scatter of ``y`` against ``x`` with the least-squares line, its 95% band, Pearson r and p.

    The layout of the paper's Figs. 2, 3 and 6: one panel per value of ``panel`` (e.g. per
    source attribute), one point per row (e.g. per target attribute).

    Parameters
    ----------
    table : DataFrame
    x, y : str
        Columns plotted on the axes.
    panel : str or None
        Column with one panel per value (None: a single panel).
    hue : str or None
        Column coloured by value (e.g. the attribute kind), with a legend.
    annotate : str or None
        Column whose value is written next to each point.
    xlabel, ylabel : str or None
        Axis labels (default: the column names).
    ncols : int
        Panels per row.
    max_panels : int or None
        Draw at most this many panels (the first ones).
    """
    groups = [(None, table)] if panel is None else list(table.groupby(panel, sort=False))
    groups = groups[:max_panels] if max_panels is not None else groups
    fig, axes = _grid(len(groups), ncols, (3.6, 3.1) if panel is not None else (5.4, 4.2))
    colours = _colours(table[hue]) if hue is not None else {}
    for ax, (name, group) in zip(axes, groups):
        gx, gy = group[x].to_numpy(float), group[y].to_numpy(float)
        fit = linear_fit_with_ci(gx, gy)
        grid = np.linspace(gx.min(), gx.max(), 100)
        line, lower, upper = fit.band(grid)
        ax.fill_between(grid, lower, upper, color=PALETTE[0], alpha=0.2, lw=0, label="95% band")
        ax.plot(grid, line, color=PALETTE[0], lw=1.4)
        if hue is None:
            ax.scatter(gx, gy, color=PALETTE[0], s=18, zorder=3)
        else:
            for value, part in group.groupby(hue, sort=False):
                ax.scatter(part[x], part[y], color=colours[value], s=18, zorder=3, label=str(value))
        if annotate is not None:
            for _, row in group.iterrows():
                ax.annotate(str(row[annotate]), (row[x], row[y]), fontsize=7,
                            xytext=(3, 2), textcoords="offset points")
        ax.set_title(
            (f"{name}\n" if name is not None else "") + f"r = {fit.r:.2f}, p = {fit.p_value:.1e}",
            fontsize=9,
        )
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(ylabel or y)
    if hue is not None:
        legend = {}
        for ax in axes:  # panels may lack some hue values
            for handle, text in zip(*ax.get_legend_handles_labels()):
                legend.setdefault(text, handle)
        handles, labels = list(legend.values()), list(legend)
        fig.legend(handles, labels, loc="upper center", ncol=min(len(labels), 5),
                   bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout(rect=(0, 0, 1, 0.92))
    else:
        fig.tight_layout()
    return fig


def plot_correlation_distribution(summary: pd.DataFrame, label: str = "source") -> Figure:
    """Pearson r of each group (e.g. each source attribute), sorted, with p < 0.05 marked.

    Parameters
    ----------
    summary : DataFrame
        Output of :func:`transferlib.experiments.nce.correlation_summary` with a ``label`` column.
    label : str
        Column naming each bar.
    """
    use_book_style()
    ordered = summary.sort_values("r", kind="stable")
    fig = _figure((6.4, 0.3 * len(ordered) + 1.2))
    ax = fig.subplots()
    significant = ordered["p_value"] < 0.05
    colours = np.where(significant, PALETTE[0], "0.7")
    ax.barh(ordered[label].astype(str), ordered["r"], color=colours)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.axvline(ordered["r"].mean(), color=PALETTE[3], lw=1.2, ls="--",
               label=f"mean r = {ordered['r'].mean():.2f}")
    ax.bar_label(ax.containers[0], labels=[f"{v:.2f}" for v in ordered["r"]], fontsize=7, padding=2)
    ax.set_xlabel("Pearson r between H(Y|Z) and target test error")
    ax.set_xlim(min(-0.1, ordered["r"].min() - 0.1), 1.05)
    ax.scatter([], [], marker="s", color=PALETTE[0], label="p < 0.05")
    ax.scatter([], [], marker="s", color="0.7", label="p >= 0.05")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_transfer_gain(identity: pd.DataFrame, hue: str = "kind") -> Figure:
    """Transferred minus dedicated accuracy per attribute, sorted by decreasing transferability.

    The layout of the paper's Fig. 4; bars are coloured by ``hue`` (the attribute kind).
    """
    use_book_style()
    ordered = identity.sort_values("ce_given_identity", kind="stable")
    colours = _colours(ordered[hue])
    fig = _figure((max(6.4, 0.22 * len(ordered) + 1.5), 3.8))
    ax = fig.subplots()
    ax.bar(np.arange(len(ordered)), ordered["transfer_gain"],
           color=[colours[k] for k in ordered[hue]])
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(np.arange(len(ordered)), ordered["attribute"], rotation=90, fontsize=7)
    ax.set_ylabel("transferred − dedicated accuracy")
    ax.set_xlabel("attribute, by increasing H(attribute | identity)")
    ax.legend(handles=[Patch(color=c, label=str(k)) for k, c in colours.items()],
              loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(colours))
    fig.tight_layout()
    return fig


def plot_training_size_curve(curve: pd.DataFrame) -> Figure:
    """Test accuracy against training-set size, dedicated versus transferred (paper's Fig. 5)."""
    attributes = list(dict.fromkeys(curve["attribute"]))
    fig, axes = _grid(len(attributes), 2, (4.0, 3.2))
    styles = {"dedicated": (PALETTE[0], "o", "dedicated network"),
              "transferred": (PALETTE[3], "s", "identity network + linear head")}
    for ax, attribute in zip(axes, attributes):
        part = curve[curve["attribute"] == attribute]
        for method, group in part.groupby("method", sort=False):
            colour, marker, label = styles[method]
            ax.plot(group["n"], group["accuracy"], marker=marker, color=colour, label=label)
        ax.set_xscale("log")
        sizes = sorted(part["n"].unique())
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_title(attribute, fontsize=10)
        ax.set_xlabel("training images with attribute labels")
        ax.set_ylabel("test accuracy")
    axes[0].legend(loc="best")
    fig.tight_layout()
    return fig
