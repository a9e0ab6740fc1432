"""Figures of the chapter on Bhattacharjee et al. (2020), P2L, one helper per figure type.

Every helper takes a tidy table from :mod:`transferlib.experiments.p2l` (or plain arrays) and
returns a :class:`matplotlib.figure.Figure` in the book style, already closed in pyplot, so a
notebook shows it only where it glues or displays it. Captions are written in the notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from transferlib.plotting.style import concept_colour, use_book_style

__all__ = [
    "domain_kind",
    "plot_domain_samples",
    "plot_k_curves",
    "plot_merged_sources",
    "plot_picks_to_best",
    "plot_pipeline",
    "plot_size_similarity",
    "plot_source_sizes",
    "plot_toy_ranking",
]

#: Hierarchy of each Glyphs domain (the colour of its bar and its legend entry).
_KINDS = {
    "script": (
        "latin_upper",
        "latin_lower",
        "greek_upper",
        "greek_lower",
        "digit",
        "symbol",
    ),
    "case": ("upper_case", "lower_case"),
    "font family": ("dejavu_sans", "dejavu_serif", "dejavu_mono", "stix", "computer_modern"),
    "style": ("regular", "bold", "italic"),
    "standard source": ("general",),
    "merged source": ("merged",),
}


def domain_kind(name: str) -> str:
    """The hierarchy a source domain is cut along (``"other dataset"`` for digits)."""
    for kind, names in _KINDS.items():
        if name in names:
            return kind
    return "other dataset"


def _figure(figsize: tuple[float, float]) -> Figure:
    use_book_style()
    fig = plt.figure(figsize=figsize)
    plt.close(fig)
    return fig


def plot_source_sizes(sources: pd.DataFrame) -> Figure:
    """Fig. 5: ``log10`` of every source's training images, coloured by hierarchy.

    ``sources`` has columns ``source`` and ``size`` (as from
    :func:`~transferlib.experiments.p2l.run_sources`).
    """
    table = sources.sort_values("size", kind="stable")
    fig = _figure((6.4, 0.32 * len(table) + 1.2))
    ax = fig.subplots()
    kinds = [domain_kind(s) for s in table["source"]]
    ax.barh(
        table["source"],
        np.log10(table["size"]),
        color=[concept_colour(k) for k in kinds],
    )
    for y, size in enumerate(table["size"]):
        ax.text(np.log10(size) + 0.02, y, f"{int(size):,}", va="center", fontsize=8)
    ax.set_xlabel("log10(training images of the source)")
    ax.set_xlim(0, np.log10(table["size"].max()) * 1.12)
    handles = [plt.Rectangle((0, 0), 1, 1, color=concept_colour(k)) for k in dict.fromkeys(kinds)]
    ax.legend(handles, list(dict.fromkeys(kinds)), loc="lower right", fontsize=8)
    ax.grid(axis="y", visible=False)
    return fig


def plot_domain_samples(images: Mapping[str, np.ndarray], *, panel_size: float = 0.55) -> Figure:
    """One row of sample images per domain (uint8 arrays ``(n, C, H, W)``), labelled by name."""
    if not images:
        raise ValueError("images is empty")
    n = max(len(v) for v in images.values())
    fig = _figure((panel_size * n + 1.6, panel_size * len(images) + 0.2))
    axes = fig.subplots(len(images), n, squeeze=False)
    for row, (name, batch) in zip(axes, images.items()):
        for j, ax in enumerate(row):
            ax.set_axis_off()
            if j < len(batch):
                picture = np.asarray(batch[j]).transpose(1, 2, 0)
                ax.imshow(picture.squeeze() if picture.shape[-1] == 1 else picture, cmap="gray")
        row[0].text(
            -0.15, 0.5, name, transform=row[0].transAxes, ha="right", va="center", fontsize=8
        )
    fig.subplots_adjust(left=1.5 / (panel_size * n + 1.6), wspace=0.05, hspace=0.05)
    return fig


def plot_size_similarity(
    ground_truth: pd.DataFrame, divergences: pd.DataFrame, metric: str, *, ncols: int = 3
) -> Figure:
    """Fig. 4: target accuracy against the source's size and divergence, one panel per target.

    Each bubble is a source: x its ``log10`` size, y its divergence from the target, colour and
    area the fine-tuned top-1 accuracy on the target.
    """
    table = ground_truth.merge(divergences[["source", "target", metric]], on=["source", "target"])
    targets = list(dict.fromkeys(table["target"]))
    ncols = max(1, min(ncols, len(targets)))
    nrows = int(np.ceil(len(targets) / ncols))
    fig = _figure((3.0 * ncols + 0.8, 2.6 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    low, high = table["accuracy"].min(), table["accuracy"].max()
    scatter = None
    for ax, target in zip(axes.flat, targets):
        part = table[table["target"] == target]
        scatter = ax.scatter(
            np.log10(part["size"]),
            part[metric],
            s=30 + 400 * (part["accuracy"] - low) / max(high - low, 1e-9),
            c=part["accuracy"],
            vmin=low,
            vmax=high,
            cmap="viridis",
            edgecolor="black",
            linewidth=0.4,
        )
        ax.set_title(target, fontsize=9)
        ax.set_xlabel("log10 |s|")
        ax.set_ylabel(f"D(t, s), {metric}")
    for ax in axes.flat[len(targets) :]:
        ax.set_visible(False)
    fig.tight_layout()
    if scatter is not None:
        fig.colorbar(scatter, ax=axes.ravel().tolist(), label="fine-tuned top-1 accuracy")
    return fig


def plot_k_curves(curves: pd.DataFrame, chosen: Mapping[str, float], top: int) -> Figure:
    """Fig. 1: mean top-T Spearman of ``E`` with the improvement against ``k``, per divergence.

    ``curves`` has columns ``metric, k, mean_spearman`` (:meth:`P2LFit.curves`); ``chosen`` maps
    each metric to its fitted ``k`` (marked).
    """
    fig = _figure((6.4, 3.8))
    ax = fig.subplots()
    for metric, part in curves.groupby("metric", sort=False):
        line = ax.plot(part["k"], part["mean_spearman"], label=metric.upper(), zorder=2)[0]
        k = chosen[metric]
        ax.plot(
            [k],
            [np.interp(k, part["k"], part["mean_spearman"])],
            "o",
            color=line.get_color(),
            zorder=3,
        )
    ax.axvline(0, color=concept_colour("baseline"), linestyle=":", linewidth=1)
    ax.text(
        0.02,
        0.02,
        "k = 0: size only",
        transform=ax.get_xaxis_transform(),
        fontsize=8,
        color=concept_colour("baseline"),
    )
    ax.set_xlabel("k (weight of the divergence in E)")
    ax.set_ylabel(f"mean top-{top} Spearman ρ(E, I)")
    ax.legend(ncol=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.12))
    return fig


_METHODS = {
    "picks_p2l": ("P2L", "p2l"),
    "picks_largest": ("largest source (B1)", "largest source"),
    "picks_least_divergent": ("least divergent (B5)", "least divergent source"),
}


def plot_picks_to_best(evaluation: pd.DataFrame) -> Figure:
    """Fig. 7: share of targets whose best source is found within n picks, per ordering."""
    fig = _figure((6.4, 3.6))
    ax = fig.subplots()
    n_sources = int(evaluation[list(_METHODS)].to_numpy().max())
    picks = np.arange(1, n_sources + 1)
    for column, (label, concept) in reversed(_METHODS.items()):  # P2L drawn last, on top
        share = [(evaluation[column] <= n).mean() for n in picks]
        width = 2.6 if column == "picks_p2l" else 1.6
        ax.step(
            picks, share, where="post", label=label, color=concept_colour(concept), linewidth=width
        )
    ax.set_xlabel("sources tried, in the method's order")
    ax.set_ylabel("share of targets whose best source was tried")
    ax.set_ylim(0, 1.05)
    ax.set_xticks(picks)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], loc="lower right")
    return fig


def plot_merged_sources(merged: pd.DataFrame, n_rates: int) -> Figure:
    """Fig. 8: merged-source wins minus standard-source wins against the divergence from the
    standard source, one point per user-like task (size: its number of classes)."""
    fig = _figure((6.4, 3.8))
    ax = fig.subplots()
    colours = np.where(
        merged["score"] > 0,
        concept_colour("merged source"),
        np.where(merged["score"] < 0, concept_colour("standard source"), "#999999"),
    )
    ax.scatter(
        merged["divergence"],
        merged["score"],
        s=20 + 6 * merged["classes"],
        c=colours,
        edgecolor="black",
        linewidth=0.4,
    )
    if len(merged) > 2 and merged["divergence"].nunique() > 1:
        slope, intercept = np.polyfit(merged["divergence"], merged["score"], 1)
        xs = np.linspace(merged["divergence"].min(), merged["divergence"].max(), 50)
        ax.plot(xs, intercept + slope * xs, color=concept_colour("fit"), linewidth=1)
    ax.axhline(0, color=concept_colour("baseline"), linewidth=0.8)
    ax.set_ylim(-n_rates - 0.5, n_rates + 0.5)
    ax.set_xlabel("divergence of the task from the standard source (KL)")
    ax.set_ylabel("merged wins − standard wins\n(over learning rates)")
    return fig


def plot_toy_ranking(
    sizes: Sequence[float], divergences: Sequence[float], names: Sequence[str], ks: np.ndarray
) -> Figure:
    """How ``E`` (eq. 2) ranks a few toy sources as the weight ``k`` of the divergence varies."""
    from transferlib.scores.p2l import embedding_divergence

    values = np.stack([embedding_divergence(sizes, divergences, float(k)) for k in ks])
    fig = _figure((6.4, 3.6))
    ax = fig.subplots()
    for j, name in enumerate(names):
        ax.plot(ks, values[:, j], label=name)
    ax.axvline(0, color=concept_colour("baseline"), linestyle=":", linewidth=1)
    ax.set_xlabel("k")
    ax.set_ylabel("E(t, s)")
    ax.legend(fontsize=8)
    return fig


def plot_pipeline() -> Figure:
    """The P2L pipeline: reference features, dataset summaries, divergence and size, ranking."""
    fig = _figure((8.6, 3.1))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3.6)
    ax.set_axis_off()
    boxes = {
        "sources": (0.1, 2.3, "source datasets s\n(sizes |s|)"),
        "target": (0.1, 0.4, "target dataset t\n(a few hundred images)"),
        "reference": (2.5, 1.35, "reference model\n(ImageNet\nEfficientNet-Lite0)"),
        "summaries": (4.7, 1.35, "mean features,\nL1-normalised:\nF(s), F(t)"),
        "score": (6.8, 1.35, "E = z(log|s|)\n+ k z(D(F(t), F(s)))"),
        "pick": (8.7, 1.35, "fine-tune the\nsource with\nlargest E"),
    }
    centres = {}
    for name, (x, y, text) in boxes.items():
        width, height = (1.9, 1.0) if name in ("sources", "target") else (1.8, 1.1)
        if name == "pick":
            width = 1.25
        patch = FancyBboxPatch(
            (x, y),
            width,
            height,
            boxstyle="round,pad=0.05",
            facecolor="#F2F2F2" if name != "score" else "#DDEBF7",
            edgecolor="#555555",
        )
        ax.add_patch(patch)
        ax.text(x + width / 2, y + height / 2, text, ha="center", va="center", fontsize=8)
        centres[name] = (x, y, width, height)

    def arrow(a: str, b: str, label: str = "") -> None:
        xa, ya, wa, ha = centres[a]
        xb, yb, _, hb = centres[b]
        start, end = (xa + wa, ya + ha / 2), (xb, yb + hb / 2)
        ax.add_patch(
            FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, color="#333333")
        )
        if label:
            ax.text(
                (start[0] + end[0]) / 2,
                (start[1] + end[1]) / 2 + 0.12,
                label,
                fontsize=7,
                ha="center",
            )

    arrow("sources", "reference", "one forward pass")
    arrow("target", "reference")
    arrow("reference", "summaries", "penultimate")
    arrow("summaries", "score", "KL, JSD, χ², L2, L1")
    arrow("score", "pick")
    ax.text(
        7.7,
        0.55,
        "k fitted once on a training group of targets\n(mean top-T Spearman "
        "with the measured improvement I)",
        ha="center",
        fontsize=7,
        style="italic",
    )
    return fig
