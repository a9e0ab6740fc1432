"""Figures of the chapter on Bao et al. (ICIP 2019), one helper per figure type.

Every helper takes a tidy table (or arrays) from :mod:`transferlib.experiments.hscore` and returns
a :class:`matplotlib.figure.Figure` in the book style, already closed in pyplot so that a notebook
shows it only where it glues or displays it. Colours come from the book's concepts
(:func:`~transferlib.plotting.style.concept_colour`); captions are written in the notebooks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Patch

from transferlib.evaluation import linear_fit_with_ci
from transferlib.plotting.style import concept_colour, use_book_style

__all__ = [
    "plot_curriculum",
    "plot_dendrogram",
    "plot_hgr_check",
    "plot_pair_ranking",
    "plot_pipeline",
    "plot_pixel_maps",
    "plot_rank_matrices",
    "plot_score_against_transfer",
    "plot_small_data",
    "plot_task_tree",
    "plot_world_samples",
]

_GROUP_CONCEPT = {"classification": "classification task", "2D": "2D task", "3D": "3D task"}


def _figure(figsize: tuple[float, float]) -> Figure:
    use_book_style()
    fig = plt.figure(figsize=figsize)
    plt.close(fig)
    return fig


def group_colour(group: str) -> str:
    """Colour of a task group (``"classification"``, ``"2D"``, ``"3D"``) or attribute kind."""
    return concept_colour(_GROUP_CONCEPT.get(group, group))


def plot_pipeline() -> Figure:
    """Schematic: a frozen source network, its features on target images, and the two ways of
    judging them (the H-score in closed form, a trained softmax head)."""
    fig = _figure((9.6, 3.1))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 3.2)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, colour: str = "0.92") -> None:
        ax.add_patch(
            FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.06", fc=colour, ec="0.35", lw=1)
        )
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(a: tuple[float, float], b: tuple[float, float], label: str = "") -> None:
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color="0.3"))
        if label:
            ax.text(
                (a[0] + b[0]) / 2,
                (a[1] + b[1]) / 2 + 0.12,
                label,
                ha="center",
                fontsize=8,
                color="0.25",
            )

    h_colour, head_colour = concept_colour("h_score"), concept_colour("re-train head")
    box(0.1, 1.2, 1.5, 0.8, "target images $x$\nlabels $y$")
    box(2.1, 1.2, 1.8, 0.8, "source network\n(frozen) $f_S$")
    box(4.4, 1.2, 1.3, 0.8, "features\n$f_S(x)$")
    box(
        6.3,
        2.05,
        3.5,
        0.95,
        "H-score, no training:\n"
        r"$\mathcal{H}_T(f_S) = \mathrm{tr}(\mathrm{cov}(f)^{-1}\mathrm{cov}(E[f|Y]))$"
        + "\n"
        + r"$\mathfrak{T}(S,T) = \mathcal{H}_T(f_S)\,/\,\|\tilde B_T\|_F^2$",
        colour=h_colour + "40",
    )
    box(
        6.3,
        0.2,
        3.5,
        0.95,
        "train a softmax head on $f_S(x)$:\nlog-loss, training and test accuracy",
        colour=head_colour + "40",
    )
    arrow((1.6, 1.6), (2.1, 1.6))
    arrow((3.9, 1.6), (4.4, 1.6))
    arrow((5.7, 1.75), (6.3, 2.5))
    arrow((5.7, 1.45), (6.3, 0.7))
    ax.text(
        8.05,
        1.6,
        "does the H-score predict the head?",
        ha="center",
        va="center",
        fontsize=9,
        style="italic",
        color="0.25",
    )
    return fig


def _scatter_with_fit(ax: plt.Axes, x: np.ndarray, y: np.ndarray, colours: Sequence[str]) -> None:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        # a saturated score (|Y| - 1 on every task with fewer examples than dimensions): no line
        ax.scatter(x, y, c=list(colours), s=22, zorder=3, edgecolors="white", linewidths=0.4)
        ax.set_title("constant on every point: no fit", fontsize=9)
        return
    fit = linear_fit_with_ci(x, y)
    grid = np.linspace(x.min(), x.max(), 100)
    line, lower, upper = fit.band(grid)
    ax.fill_between(grid, lower, upper, color=concept_colour("fit"), alpha=0.15, lw=0)
    ax.plot(grid, line, color=concept_colour("fit"), lw=1.3)
    ax.scatter(x, y, c=list(colours), s=22, zorder=3, edgecolors="white", linewidths=0.4)
    ax.set_title(f"r = {fit.r:.2f}, p = {fit.p_value:.1e}, slope {fit.slope:.3g}", fontsize=9)


def plot_score_against_transfer(
    table: pd.DataFrame,
    x: str,
    *,
    xlabel: str,
    measures: Sequence[tuple[str, str]] = (
        ("train_log_loss", "training log-loss of the head (nats)"),
        ("train_accuracy", "training accuracy"),
        ("test_accuracy", "test accuracy"),
    ),
    annotate: str | None = None,
    hue: str | None = None,
    reference: tuple[float, float, str] | None = None,
) -> Figure:
    """The H-score (or transferability) against the measures of a trained head (Fig. 2).

    One panel per measure: a point per row of ``table``, the least-squares line with its 95%
    band, Pearson r, p and the slope. ``annotate`` writes a column next to each point (layer
    names); ``hue`` colours points by an ordinal column (the number of classes) with a legend;
    ``reference = (intercept, slope, label)`` draws a line of theory in the first panel.
    """
    fig = _figure((3.6 * len(measures), 3.4))
    axes = fig.subplots(1, len(measures), squeeze=False)[0]
    if hue is None:
        colours = [concept_colour("h_score")] * len(table)
        legend = []
    else:
        levels = sorted(table[hue].unique())
        cmap = plt.get_cmap("viridis")
        palette = {v: cmap(0.1 + 0.8 * i / max(1, len(levels) - 1)) for i, v in enumerate(levels)}
        colours = [palette[v] for v in table[hue]]
        legend = [
            Line2D([], [], ls="", marker="o", color=palette[v], label=f"{hue} = {v}")
            for v in levels
        ]
    for ax, (column, label) in zip(axes, measures):
        values = table[column].to_numpy(float)
        _scatter_with_fit(ax, table[x].to_numpy(float), values, colours)
        if annotate is not None:
            for xv, yv, text in zip(table[x], values, table[annotate]):
                ax.annotate(
                    str(text), (xv, yv), fontsize=7, xytext=(3, 3), textcoords="offset points"
                )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(label)
    if reference is not None:
        intercept, slope, text = reference
        grid = np.linspace(table[x].min(), table[x].max(), 100)
        bottom, top = axes[0].get_ylim()
        axes[0].plot(
            grid,
            intercept + slope * grid,
            color=concept_colour("closed form"),
            ls="--",
            lw=1.1,
            label=text,
        )
        axes[0].set_ylim(bottom, top)
        axes[0].legend(loc="upper right", fontsize=7)
    if legend:
        fig.legend(handles=legend, loc="upper center", ncol=len(legend), bbox_to_anchor=(0.5, 1.0))
        fig.tight_layout(rect=(0, 0, 1, 0.9))
    else:
        fig.tight_layout()
    return fig


def plot_hgr_check(curve: pd.DataFrame) -> Figure:
    """Soft-HGR estimates of ``||B||_F^2`` during training against the closed form ``|Y| - 1``."""
    fig = _figure((6.0, 3.6))
    ax = fig.subplots()
    ax.plot(
        curve["step"],
        curve["train_estimate"],
        color=concept_colour("training set"),
        label="Soft-HGR estimate, training images",
    )
    ax.plot(
        curve["step"],
        curve["test_estimate"],
        color=concept_colour("test set"),
        label="Soft-HGR estimate, held-out images",
    )
    closed = float(curve["closed_form"].iloc[0])
    ax.axhline(
        closed,
        color=concept_colour("closed form"),
        ls="--",
        lw=1.2,
        label=r"closed form $|\mathcal{Y}| - 1$",
    )
    ax.axhline(
        float(curve["h_score"].iloc[0]),
        color=concept_colour("h_score"),
        ls=":",
        lw=1.4,
        label="H-score of the input features",
    )
    ax.set_xlabel("Adam steps (full batch)")
    ax.set_ylabel(r"estimate of $\|\tilde B_T\|_F^2 = \sum_i \rho_i^2$")
    ax.set_ylim(bottom=min(0.0, float(curve["test_estimate"].min()) - 0.1), top=closed * 1.15)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_small_data(table: pd.DataFrame) -> Figure:
    """Normalised H-score, shrinkage H-score and head accuracy per layer, at several sample sizes.

    ``table`` has the columns of :func:`~transferlib.experiments.hscore.run_small_data` (one row
    per size and layer; layers in depth order).
    """
    fig = _figure((10.2, 3.4))
    axes = fig.subplots(1, 3)
    sizes = sorted(table["per_class"].unique())
    cmap = plt.get_cmap("viridis")
    for i, size in enumerate(sizes):
        part = table[table["per_class"] == size]
        colour = cmap(0.1 + 0.8 * i / max(1, len(sizes) - 1))
        label = f"{size} per class (n = {int(part['n_train'].iloc[0])})"
        positions = np.arange(len(part))
        for ax, column in zip(axes, ("h_score", "shrinkage_h_score", "test_accuracy")):
            values = part[column] / (part["max_h_score"] if column != "test_accuracy" else 1)
            ax.plot(positions, values, marker="o", color=colour, label=label)
    labels = [
        f"{layer}\n({dim})"
        for layer, dim in table.drop_duplicates("layer")[["layer", "dim"]].itertuples(index=False)
    ]
    titles = ("H-score / (K - 1)", "shrinkage H-score / (K - 1)", "test accuracy of the head")
    for ax, title in zip(axes, titles):
        ax.set_xticks(np.arange(len(labels)), labels, fontsize=7)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("layer (feature dimension)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_world_samples(
    images: np.ndarray,
    titles: Sequence[str],
    targets: Mapping[str, np.ndarray],
    groups: Mapping[str, str],
) -> Figure:
    """A grid of world scenes (first row) and every dense target of each (one row per task).

    ``targets`` maps a task to its ``(n, R, R)`` maps in [0, 1]; each row label is coloured by
    the task's group.
    """
    n, rows = len(images), 1 + len(targets)
    fig = _figure((1.15 * n + 1.1, 1.15 * rows + 0.2))
    axes = fig.subplots(rows, n, squeeze=False)
    for j in range(n):
        axes[0, j].imshow(images[j].transpose(1, 2, 0), interpolation="nearest")
        axes[0, j].set_title(titles[j], fontsize=7)
        for i, (task, maps) in enumerate(targets.items(), start=1):
            axes[i, j].imshow(maps[j], cmap="magma", vmin=0, vmax=1, interpolation="nearest")
    axes[0, 0].set_ylabel("image", fontsize=8)
    for i, task in enumerate(targets, start=1):
        axes[i, 0].set_ylabel(task, fontsize=8, color=group_colour(groups[task]))
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2)
    return fig


def _rank_heatmap(ax: plt.Axes, ranks: pd.DataFrame, title: str, colour: str) -> None:
    values = ranks.to_numpy(float)
    ax.imshow(values, cmap="viridis_r", vmin=1, vmax=np.nanmax(values))
    for (i, j), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(
                j,
                i,
                f"{value:.0f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value <= np.nanmax(values) / 2 else "black",
            )
    ax.set_xticks(np.arange(ranks.shape[1]), ranks.columns, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(ranks.shape[0]), ranks.index, fontsize=8)
    ax.set_xlabel("source task")
    ax.set_title(title, fontsize=10, color=colour)
    ax.grid(False)


def plot_rank_matrices(
    h_ranks: pd.DataFrame, affinity_ranks: pd.DataFrame, groups: Mapping[str, str]
) -> Figure:
    """Ranking of sources (columns) for each target (rows), by H-score and by affinity (Fig. 3).

    Rank 1 is the best source of the row; the diagonal (a task to itself) is empty. Tick labels
    are coloured by task group.
    """
    fig = _figure((10.0, 4.6))
    axes = fig.subplots(1, 2)
    _rank_heatmap(axes[0], h_ranks, "ranking by H-score transferability", concept_colour("h_score"))
    _rank_heatmap(
        axes[1],
        affinity_ranks,
        "ranking by affinity (frozen source + trained readout)",
        concept_colour("affinity"),
    )
    axes[0].set_ylabel("target task")
    for ax in axes:
        for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
            label.set_color(group_colour(groups[label.get_text()]))
    fig.tight_layout()
    return fig


def _group_legend(fig: Figure, groups: Sequence[str], **kwargs: object) -> None:
    handles = [Patch(color=group_colour(g), label=g) for g in dict.fromkeys(groups)]
    fig.legend(handles=handles, ncol=len(handles), fontsize=8, **kwargs)


def plot_dendrogram(linkage: np.ndarray, names: Sequence[str], groups: Mapping[str, str]) -> Figure:
    """Agglomerative clustering of the tasks' transferability vectors (Fig. 3, right)."""
    from scipy.cluster.hierarchy import dendrogram

    fig = _figure((6.4, 3.4))
    ax = fig.subplots()
    dendrogram(
        linkage,
        labels=list(names),
        ax=ax,
        color_threshold=0,
        above_threshold_color="0.35",
        leaf_rotation=45,
    )
    for label in ax.get_xticklabels():
        label.set_color(group_colour(groups[label.get_text()]))
        label.set_ha("right")
    ax.set_ylabel("distance (average linkage)")
    ax.grid(False)
    _group_legend(fig, [groups[n] for n in names], loc="upper right")
    fig.tight_layout()
    return fig


def plot_pair_ranking(
    pairs: pd.DataFrame, first_order: pd.DataFrame, tasks: Sequence[str]
) -> Figure:
    """Rank of every pair of sources for every target (Fig. 4).

    Rows are targets, columns source pairs (blank where the target is one of the pair). A
    circle marks, in each row, the pair of the two best single sources by H-score; rank 1 is the
    best pair.
    """
    labels = [f"{a}+{b}" for a, b in zip(pairs["source_a"], pairs["source_b"])]
    table = pairs.assign(pair=labels)
    table["rank"] = table.groupby("target")["h_score"].rank(ascending=False, method="min")
    order = list(dict.fromkeys(labels))
    matrix = table.pivot(index="target", columns="pair", values="rank").reindex(
        index=list(tasks), columns=order
    )
    fig = _figure((0.34 * len(order) + 2.2, 0.36 * len(tasks) + 2.4))
    ax = fig.subplots()
    ax.imshow(matrix.to_numpy(float), cmap="viridis_r", aspect="auto")
    for i, target in enumerate(matrix.index):
        best = first_order[first_order["target"] == target].nlargest(2, "h_score")["source"]
        a, b = sorted(best, key=list(tasks).index)
        j = order.index(f"{a}+{b}")
        ax.scatter(j, i, s=70, facecolors="none", edgecolors="white", linewidths=1.6)
        k = int(np.nanargmin(matrix.iloc[i].to_numpy(float)))
        ax.text(k, i, "1", ha="center", va="center", fontsize=7, color="white", weight="bold")
    ax.set_xticks(np.arange(len(order)), order, rotation=75, ha="right", fontsize=7)
    ax.set_yticks(np.arange(len(tasks)), list(tasks), fontsize=8)
    ax.set_xlabel("pair of source tasks (codes concatenated)")
    ax.set_ylabel("target task")
    ax.grid(False)
    ax.scatter([], [], s=60, facecolors="none", edgecolors="0.3", label="top-2 single sources")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.12), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def plot_pixel_maps(
    maps: Mapping[str, np.ndarray] | Sequence[tuple[str, np.ndarray]], ncols: int = 4
) -> Figure:
    """Per-pixel H-score maps (Fig. 5) on one colour scale, row by row; titles give each map's
    mean. ``maps`` is a mapping or a sequence of ``(title, map)`` (titles may repeat)."""
    items = list(maps.items()) if isinstance(maps, Mapping) else list(maps)
    n = len(items)
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig = _figure((2.3 * ncols + 0.8, 2.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    top = max(float(np.nanmax(values)) for _, values in items)
    image = None
    for ax, (title, values) in zip(axes.flat, items):
        image = ax.imshow(values, cmap="magma", vmin=0, vmax=top, interpolation="nearest")
        ax.set_title(f"{title}\nmean {np.nanmean(values):.2f}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="H-score of the pixel")
    return fig


def _tree_layout(edges: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """Layered positions: depth downwards, leaves spread left to right in depth-first order."""
    children: dict[str, list[str]] = {}
    for parent, child in zip(edges["parent"], edges["child"]):
        children.setdefault(parent, []).append(child)
    roots = [p for p in edges["parent"] if p not in set(edges["child"])]
    positions: dict[str, tuple[float, float]] = {}
    next_leaf = [0.0]

    def place(node: str, depth: int) -> float:
        kids = children.get(node, [])
        if not kids:
            x = next_leaf[0]
            next_leaf[0] += 1
        else:
            x = float(np.mean([place(k, depth + 1) for k in kids]))
        positions[node] = (x, -depth)
        return x

    for root in dict.fromkeys(roots):
        place(root, 0)
        next_leaf[0] += 0.5
    return positions


def plot_task_tree(
    edges: pd.DataFrame,
    groups: Mapping[str, str],
    *,
    salience: float | None = None,
    isolated: Sequence[str] = (),
) -> Figure:
    """The curriculum tree (Figs. 6-7): parent above child, edges labelled with transferability.

    With ``salience``, edges whose transferability is below it are left out (the tree falls
    into the forest of salient transfers); ``isolated`` tasks are drawn without edges.
    """
    shown = edges if salience is None else edges[edges["transferability"] >= salience]
    nodes = list(dict.fromkeys([*edges["parent"], *edges["child"], *isolated]))
    forest = shown.copy()
    positions = _tree_layout(forest) if len(forest) else {}
    column = max((x for x, _ in positions.values()), default=-1.0) + 1.0
    for node in nodes:  # tasks left without a salient edge, in a row of their own
        if node not in positions:
            positions[node] = (column, 0.0)
            column += 1.0
    width = max(x for x, _ in positions.values()) + 1
    depth = -min(y for _, y in positions.values()) + 1
    fig = _figure((max(5.0, 1.25 * width + 1.0), 1.15 * depth + 1.2))
    ax = fig.subplots()
    for row in forest.itertuples(index=False):
        (x0, y0), (x1, y1) = positions[row.parent], positions[row.child]
        ax.annotate(
            "",
            (x1, y1 + 0.18),
            (x0, y0 - 0.18),
            arrowprops={"arrowstyle": "-|>", "color": "0.4", "lw": 1.0},
        )
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            f"{row.transferability:.2f}",
            fontsize=7,
            ha="center",
            va="center",
            bbox={"fc": "white", "ec": "none", "pad": 0.5},
        )
    for node, (x, y) in positions.items():
        ax.text(
            x,
            y,
            node,
            ha="center",
            va="center",
            fontsize=8,
            color="white",
            bbox={"boxstyle": "round,pad=0.3", "fc": group_colour(groups[node]), "ec": "none"},
        )
    ax.set_xlim(-0.8, width - 0.2)
    ax.set_ylim(-depth + 0.5, 0.6)
    ax.axis("off")
    _group_legend(fig, [groups[n] for n in nodes], loc="lower center")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def plot_curriculum(table: pd.DataFrame) -> Figure:
    """Test loss relative to the trivial predictor, per task and starting point (lower is
    better): the parent's encoder, random weights, the worst-ranked source's encoder."""
    starts = (
        ("parent", "parent encoder", "from its parent in the tree"),
        ("scratch", "reference", "from scratch"),
        ("worst", "worst source", "from the lowest-ranked source"),
    )
    summary = table.groupby(["task", "init"], sort=False)["relative_loss"].agg(["mean", "std"])
    tasks = list(dict.fromkeys(table["task"]))
    fig = _figure((max(6.0, 0.9 * len(tasks) + 1.6), 3.6))
    ax = fig.subplots()
    width = 0.8 / len(starts)
    for k, (init, concept, label) in enumerate(starts):
        means = [summary.loc[(t, init), "mean"] for t in tasks]
        spread = [summary.loc[(t, init), "std"] for t in tasks]
        ax.bar(
            np.arange(len(tasks)) + (k - 1) * width,
            means,
            width,
            color=concept_colour(concept),
            yerr=None if np.all(np.isnan(spread)) else spread,
            label=label,
        )
    ax.axhline(1.0, color=concept_colour("baseline"), ls="--", lw=1, label="trivial predictor")
    ax.set_xticks(np.arange(len(tasks)), tasks, rotation=30, ha="right")
    ax.set_ylabel("test loss / trivial predictor's")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.2), ncol=4)
    fig.tight_layout()
    return fig
