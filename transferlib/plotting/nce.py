"""Figures of the chapter on Tran, Nguyen & Hassner (ICCV 2019), one helper per figure type.

Every helper takes a tidy table from :mod:`transferlib.experiments.nce` and returns a
:class:`matplotlib.figure.Figure` in the book style, already closed in pyplot (it appears only where
a page glues or displays it). Colours come from the book's concepts
(:func:`~transferlib.plotting.style.concept_colour`): an attribute kind, a transfer method or a
statistic has the same colour in every figure. Captions are written in the notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Patch

from transferlib.evaluation import linear_fit_with_ci
from transferlib.plotting.style import book_figure, concept_colour
from transferlib.scores import conditional_entropy

__all__ = [
    "plot_correlation_distribution",
    "plot_correlation_panels",
    "plot_label_sequences",
    "plot_theorem_check",
    "plot_training_size_curve",
    "plot_transfer_gain",
    "plot_transfer_pipeline",
]

#: Marker of each source in figures with several sources (the colour is the source's kind).
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_FAILED = {"marker": "x", "color": concept_colour("failed baseline"), "s": 30, "linewidths": 1.2}
_FAILED_LABEL = "network did not beat its majority baseline"


def _grid(n_panels: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = book_figure(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, axes.flat[:n_panels]


def _kind_colour(kind: str) -> str:
    return concept_colour(str(kind))


def _legend_below(fig: Figure, handles: list, labels: list[str], ncol: int = 3) -> None:
    """One legend for the whole figure, centred below the panels, then a tight layout."""
    rows = int(np.ceil(len(labels) / ncol))
    height = fig.get_figheight()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, min(0.5, (0.3 * rows + 0.1) / height), 1, 1))


def plot_transfer_pipeline() -> Figure:
    """The chapter's pipeline: transfer with a frozen source network, and the head ``k-bar``.

    Top row: images, the source network ``w_Z`` trained on ``Z`` and frozen, its features, a new
    head ``k_Y`` fitted on the target labels. Bottom row: the proof's constructed head, which
    maps the source head's softmax through ``P(y|z)`` counted on the training labels.
    """
    fig, ax = book_figure(figsize=(8.6, 4.0))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 50)
    ax.axis("off")
    ax.grid(False)

    def box(x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
        for face, alpha in ((colour, 0.16), ("none", 1.0)):
            ax.add_patch(
                FancyBboxPatch(
                    (x, y),
                    w,
                    h,
                    boxstyle="round,pad=0.6,rounding_size=1.5",
                    facecolor=face,
                    edgecolor=colour if face == "none" else "none",
                    alpha=alpha,
                    lw=1.3,
                )
            )
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(start: tuple[float, float], end: tuple[float, float], colour: str = "0.25") -> None:
        ax.annotate(
            "",
            end,
            start,
            arrowprops={
                "arrowstyle": "-|>",
                "color": colour,
                "lw": 1.2,
                "shrinkA": 0,
                "shrinkB": 0,
            },
        )

    source, head, labels, plain = (
        concept_colour("source"),
        concept_colour("transferred"),
        concept_colour("nce"),
        "0.55",
    )
    ax.text(50, 46.5, "Transfer, what the experiments measure", ha="center", weight="bold")
    box(1, 30, 11, 9, "images\n$x_1, \\dots, x_n$", plain)
    box(17, 30, 17, 9, "source network $w_Z$\ntrained on $Z$, frozen", source)
    box(40, 30, 14, 9, "features\n$r = w_Z(x)$", plain)
    box(60, 30, 17, 9, "new head $k_Y$ fitted\non $Y$ (linear SVM)", head)
    box(83, 30, 15, 9, "test accuracy\non $Y$", plain)
    for x0, x1 in ((12.6, 16.4), (34.6, 39.4), (54.6, 59.4), (77.6, 82.4)):
        arrow((x0, 34.5), (x1, 34.5))
    ax.text(1, 16.5, "The proof's\nhead $\\bar k$", weight="bold", va="center")
    box(17, 12, 17, 9, "source head $h_Z$:\n$p_Z(z \\mid x)$", source)
    box(39, 12, 23, 9, "$\\bar k$: $p_Y(y) = \\sum_z \\hat P(y \\mid z)\\, p_Z(z)$", head)
    box(
        66,
        3,
        31,
        9,
        "training labels $(y_i, z_i)$: counting\ngives $\\hat P(y \\mid z)$ and $H(Y \\mid Z)$",
        labels,
    )
    box(
        66,
        18,
        31,
        9,
        "Theorem 1: $l_Y(w_Z, k_Y) \\geq l_Z - H(Y \\mid Z)$\nwhen $\\bar k$ is among the heads",
        labels,
    )
    arrow((25.5, 29.4), (25.5, 21.6))
    arrow((34.6, 16.5), (38.4, 16.5))
    arrow((65.4, 7.5), (50.5, 11.4), labels)
    arrow((62.6, 17.5), (65.4, 21.5))
    return fig


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
        ce = conditional_entropy(target_labels=y, source_labels=z)
        ax.set_title(f"{title}\nH(Y|Z) = {ce:.3f} nats = {ce / np.log(2):.2f} log 2", fontsize=9)
        ax.set_yticks([0, 1], ["Y (target)", "Z (source)"])
        ax.set_xticks([])
        ax.grid(False)
    fig.tight_layout()
    return fig


def plot_theorem_check(table: pd.DataFrame) -> Figure:
    """Transferred training log-likelihood against the Theorem-1 bound ``l_Z - H(Y|Z)``.

    Two panels with the same axes: the logistic head alone (the usual head space ``K'``) and the
    better of it and ``k-bar`` (``K = K' + {k-bar}``, what the theorem bounds). One point per
    (source, target) pair; colour: the source's kind, marker: the source. Points on or above the
    dashed diagonal satisfy the bound.
    """
    fig, axes = _grid(2, 2, (4.0, 3.8))
    columns = ("head_log_likelihood", "transferred_log_likelihood")
    titles = ("logistic head alone ($K'$)", "best of logistic head and $\\bar k$")
    values = table[["bound", *columns]].to_numpy(float)
    finite = values[np.isfinite(values)]
    lo, hi = finite.min(), max(finite.max(), 0.0)
    pad = 0.05 * (hi - lo + 1e-9)
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(dict.fromkeys(table["source"]))}
    for ax, column, title in zip(axes, columns, titles):
        for source, group in table.groupby("source", sort=False):
            ax.scatter(
                group["bound"],
                group[column],
                color=_kind_colour(group["source_kind"].iloc[0]),
                marker=markers[source],
                s=22,
                label=f"source: {source}",
                zorder=3,
            )
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.4", lw=1, ls="--")
        below = int((table[column] < table["bound"] - 1e-9).sum())
        ax.set_title(f"{title}\n{below} of {len(table)} pairs below the bound", fontsize=9)
        ax.set_xlabel(r"bound $l_Z - H(Y|Z)$ (nats)")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
    axes[0].set_ylabel(r"training log-likelihood $l_Y$ (nats)")
    _legend_below(fig, *axes[0].get_legend_handles_labels())
    return fig


def plot_correlation_panels(
    table: pd.DataFrame,
    x: str,
    y: str,
    panel: str | None = None,
    hue: str | None = None,
    annotate: str | None = None,
    flag: str | None = None,
    yerr: str | None = None,
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
        Column of book concepts (an attribute kind) colouring the points, with a legend.
    annotate : str or None
        Column whose non-empty values are written next to their points.
    flag : str or None
        Boolean column; rows where it is False (a network that did not beat its majority
        baseline) get a black cross and a legend entry.
    yerr : str or None
        Column of error bars on ``y`` (e.g. the standard deviation over seeds).
    xlabel, ylabel : str or None
        Axis labels (default: the column names).
    ncols : int
        Panels per row.
    max_panels : int or None
        Draw at most this many panels (the first ones).
    """
    groups = [(None, table)] if panel is None else list(table.groupby(panel, sort=False))
    groups = groups[:max_panels] if max_panels is not None else groups
    fig, axes = _grid(len(groups), ncols, (3.6, 3.1) if len(groups) > 1 else (5.6, 4.0))
    fit_colour = concept_colour("fit")
    for ax, (name, group) in zip(axes, groups):
        gx, gy = group[x].to_numpy(float), group[y].to_numpy(float)
        fit = linear_fit_with_ci(gx, gy)
        grid = np.linspace(gx.min(), gx.max(), 100)
        line, lower, upper = fit.band(grid)
        ax.fill_between(grid, lower, upper, color=fit_colour, alpha=0.15, lw=0, label="95% band")
        ax.plot(grid, line, color=fit_colour, lw=1.2, label="least-squares line")
        parts = [(None, group)] if hue is None else list(group.groupby(hue, sort=False))
        for value, part in parts:
            colour = concept_colour("data") if value is None else _kind_colour(value)
            if yerr is not None:
                ax.errorbar(part[x], part[y], yerr=part[yerr], fmt="none", ecolor=colour, lw=0.8)
            ax.scatter(
                part[x],
                part[y],
                color=colour,
                s=20,
                zorder=3,
                label=None if value is None else str(value),
            )
        if flag is not None:
            failed = group[~group[flag].astype(bool)]
            if len(failed):
                ax.scatter(failed[x], failed[y], zorder=4, label=_FAILED_LABEL, **_FAILED)
        if annotate is not None:
            for _, row in group[group[annotate].astype(str) != ""].iterrows():
                ax.annotate(
                    str(row[annotate]),
                    (row[x], row[y]),
                    fontsize=7,
                    xytext=(4, 2),
                    textcoords="offset points",
                )
        ax.set_title(
            (f"{name}\n" if name is not None else "") + f"r = {fit.r:.2f}, p = {fit.p_value:.1e}",
            fontsize=9,
        )
        ax.set_xlabel(xlabel or x)
        ax.set_ylabel(ylabel or y)
    legend: dict[str, object] = {}
    for ax in axes:  # panels may lack some hue values
        for handle, text in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(text, handle)
    _legend_below(fig, list(legend.values()), list(legend))
    return fig


def plot_correlation_distribution(
    summary: pd.DataFrame, control: pd.DataFrame | None = None, label: str = "source"
) -> Figure:
    """Pearson r of each group (e.g. each source attribute), sorted, with its control.

    Parameters
    ----------
    summary : DataFrame
        :func:`~transferlib.experiments.nce.correlation_summary` with a ``label`` column.
    control : DataFrame or None
        The same for the control predictor (e.g. the target's entropy alone), drawn as a
        marker on each bar.
    label : str
        Column naming each bar.
    """
    ordered = summary.sort_values("r", kind="stable").reset_index(drop=True)
    fig, ax = book_figure(figsize=(6.4, 0.32 * len(ordered) + 1.5))
    significant = ordered["p_value"] < 0.05
    colours = [concept_colour("significant" if s else "not significant") for s in significant]
    positions = np.arange(len(ordered))
    ax.barh(positions, ordered["r"], color=colours, height=0.6)
    ax.set_yticks(positions, ordered[label].astype(str))
    ax.axvline(0, color="0.3", lw=0.8)
    handles = [
        Patch(color=concept_colour("significant"), label="r of H(Y|Z), p < 0.05"),
        Patch(color=concept_colour("not significant"), label="r of H(Y|Z), p ≥ 0.05"),
    ]
    if control is not None:
        r_control = ordered[label].map(control.set_index(label)["r"])
        ax.scatter(
            r_control,
            positions,
            marker="|",
            s=160,
            linewidths=2.2,
            color=concept_colour("baseline"),
            zorder=3,
        )
        handles.append(
            Line2D(
                [],
                [],
                marker="|",
                ls="none",
                ms=12,
                mew=2.2,
                color=concept_colour("baseline"),
                label="r of H(Y) alone",
            )
        )
    ax.set_xlabel("Pearson r with the target's test error")
    lowest = min(ordered["r"].min(), 0.0 if control is None else np.nanmin(r_control))
    ax.set_xlim(min(-0.1, lowest - 0.1), 1.05)
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18 - 0.6 / len(ordered)),
        ncol=3,
    )
    fig.tight_layout()
    return fig


def plot_transfer_gain(gain: pd.DataFrame) -> Figure:
    """Transferred minus dedicated accuracy per attribute, by increasing ``H(attribute|identity)``.

    The layout of the paper's Fig. 4. ``gain`` has one row per attribute with ``attribute,
    kind, ce_given_identity, transfer_gain`` (the mean over seeds), optionally ``transfer_gain_sd``
    (error bars) and ``dedicated_failed`` (hatched bars: a dedicated network that did not beat its
    majority baseline in some seed).
    """
    ordered = gain.sort_values("ce_given_identity", kind="stable").reset_index(drop=True)
    fig, ax = book_figure(figsize=(max(6.4, 0.24 * len(ordered) + 1.6), 4.2))
    positions = np.arange(len(ordered))
    failed = ordered.get("dedicated_failed", pd.Series(False, index=ordered.index)).astype(bool)
    ax.bar(
        positions,
        ordered["transfer_gain"],
        yerr=ordered.get("transfer_gain_sd"),
        color=[_kind_colour(k) for k in ordered["kind"]],
        hatch=["///" if f else "" for f in failed],
        edgecolor="white",
        error_kw={"ecolor": "0.3", "lw": 0.8, "capsize": 2},
    )
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(positions, ordered["attribute"], rotation=90, fontsize=7)
    ax.set_xlim(-0.6, len(ordered) - 0.4)
    ax.set_ylabel("transferred − dedicated accuracy")
    ax.set_xlabel("attribute, by increasing H(attribute | character)")
    kinds = list(dict.fromkeys(ordered["kind"]))
    handles = [Patch(color=_kind_colour(k), label=str(k)) for k in kinds]
    if failed.any():
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="0.3",
                hatch="///",
                label="dedicated network did not beat its baseline",
            )
        )
    ax.legend(
        handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(len(handles), 4)
    )
    fig.tight_layout()
    return fig


def plot_training_size_curve(curve: pd.DataFrame) -> Figure:
    """Test accuracy against training-set size, dedicated versus transferred (paper's Fig. 5).

    ``curve`` is :func:`~transferlib.experiments.nce.run_training_size_curve`, possibly over
    seeds (a ``seed`` column): lines are means, bands one standard deviation over seeds. The
    dashed line is the majority-class baseline.
    """
    attributes = list(dict.fromkeys(curve["attribute"]))
    fig, axes = _grid(len(attributes), 2, (4.0, 3.3))
    labels = {"dedicated": "dedicated network", "transferred": "identity network + linear SVM"}
    for ax, attribute in zip(axes, attributes):
        part = curve[curve["attribute"] == attribute]
        for method, group in part.groupby("method", sort=False):
            stats = group.groupby("n")["accuracy"].agg(["mean", "std"]).fillna(0.0)
            colour = concept_colour(method)
            ax.plot(stats.index, stats["mean"], marker="o", color=colour, label=labels[method])
            ax.fill_between(
                stats.index,
                stats["mean"] - stats["std"],
                stats["mean"] + stats["std"],
                color=colour,
                alpha=0.2,
                lw=0,
            )
        baseline = part.groupby("n")["majority_accuracy"].mean()
        ax.plot(
            baseline.index,
            baseline,
            color=concept_colour("baseline"),
            ls="--",
            lw=1,
            label="majority baseline",
        )
        ax.set_xscale("log")
        sizes = sorted(part["n"].unique())
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
        ax.minorticks_off()
        ax.set_title(attribute, fontsize=10)
        ax.set_xlabel("training images with attribute labels")
        ax.set_ylabel("test accuracy")
    _legend_below(fig, *axes[0].get_legend_handles_labels())
    return fig
