"""One figure style for the whole book, its colours by concept, new figures that appear only where
a page shows them, and the caption suffix every figure ends with."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import matplotlib as mpl
import pandas as pd
from matplotlib.figure import Figure
from pandas.io.formats.style import Styler

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies and in grey print.
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#CC79A7",
    "#56B4E9",
    "#F0E442",
    "#000000",
)

BOOK_STYLE: dict[str, object] = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "image.cmap": "viridis",
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
}


#: One colour per concept across the whole book: the same kind of attribute, transfer method,
#: score or source model has the same colour in every figure of every chapter. Chapters add
#: their concepts here (never pick ``PALETTE[i]`` for a concept in a chapter module).
CONCEPT_COLOURS: dict[str, str] = {
    # attribute kinds (Glyphs) and the identity label
    "character": "#0072B2",
    "font": "#E69F00",
    "appearance": "#009E73",
    "identity": "#CC79A7",
    # any source network of a transfer (the identity network is one)
    "source": "#882255",
    # transfer methods and trained networks
    "dedicated": "#0072B2",
    "transferred": "#D55E00",
    "re-train head": "#D55E00",
    "fine-tune": "#009E73",
    "reference": "#7F7F7F",
    "meta-transfer": "#CC79A7",
    # transferability scores
    "nce": "#E69F00",
    "leep": "#0072B2",
    "h_score": "#009E73",
    "shrinkage_h_score": "#56B4E9",
    "h_score_transferability": "#2CA02C",
    "logme": "#D55E00",
    "nleep": "#CC79A7",
    "gbc": "#8C564B",
    "transrate": "#F0E442",
    "parc": "#44AA99",
    "sfda": "#AA4499",
    "p2l": "#000000",
    # source models
    "efficientnet_lite0": "#56B4E9",
    "efficientnet_lite1": "#0072B2",
    "efficientnet_lite2": "#1F3A93",
    "small_cnn": "#E69F00",
    "resnet20": "#D55E00",
    "resnet18": "#8C564B",
    "small_cnn_narrow": "#F0E442",
    # H-score chapter: task groups of the multi-task world, the empirical ranking, HGR estimates,
    # the starting points of the curriculum test
    "classification task": "#CC79A7",
    "2D task": "#0072B2",
    "3D task": "#D55E00",
    "affinity": "#E69F00",
    "soft_hgr": "#56B4E9",
    "closed form": "#000000",
    "training set": "#0072B2",
    "test set": "#D55E00",
    "parent encoder": "#009E73",
    "worst source": "#E69F00",
    # P2L: the hierarchies source domains are cut along, and the ways of picking a source
    "script": "#0072B2",
    "case": "#56B4E9",
    "font family": "#E69F00",
    "style": "#B8860B",
    "other dataset": "#9467BD",
    "standard source": "#009E73",
    "merged source": "#D55E00",
    "largest source": "#E69F00",
    "least divergent source": "#56B4E9",
    "random source": "#BBBBBB",
    # dependence measures of the background chapter
    "hgr": "#332288",
    # statistics drawn in every chapter (neutral, so they never clash with a concept's colour)
    "data": "#0072B2",
    "fit": "#444444",
    "significant": "#444444",
    "not significant": "#BBBBBB",
    "baseline": "#7F7F7F",
    "mean": "#D55E00",
    "failed baseline": "#000000",
}


def concept_colour(concept: str) -> str:
    """The book's colour of ``concept`` (see :data:`CONCEPT_COLOURS`).

    Raises
    ------
    KeyError
        For a concept that has no colour yet: add it to :data:`CONCEPT_COLOURS` rather than
        picking one locally, so it keeps its colour in every chapter.
    """
    try:
        return CONCEPT_COLOURS[concept]
    except KeyError:
        raise KeyError(
            f"no book colour for {concept!r}; add it to CONCEPT_COLOURS in "
            "transferlib/plotting/style.py"
        ) from None


def use_book_style() -> None:
    """Apply the book's matplotlib style globally (call once at the top of a notebook)."""
    mpl.rcParams.update(BOOK_STYLE)


def book_figure(nrows: int = 1, ncols: int = 1, **subplots: Any) -> tuple[Figure, Any]:
    """``plt.subplots`` in the book style, with the figure already closed in pyplot.

    The inline backend shows every figure still open in pyplot at the end of a cell, so a figure
    that a page also glues would appear twice (once without its caption). A closed figure is
    still drawn by ``glue`` and ``display``: it appears exactly where the page puts it.
    """
    import matplotlib.pyplot as plt

    use_book_style()
    fig, axes = plt.subplots(nrows, ncols, **subplots)
    plt.close(fig)
    return fig, axes


def _number(value: Any, precision: int) -> str:
    """A float rounded for a table: ``-0.000`` becomes ``0.000``, NaN a dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{round(value, precision) + 0.0:.{precision}f}"
    return str(value)


def book_table(
    table: pd.DataFrame,
    precision: int = 3,
    *,
    formats: Mapping[str, str] | None = None,
    index: bool = False,
    escape: bool = True,
) -> Styler:
    """A table as the book shows it: rounded numbers, padded cells, no index unless it means something.

    Parameters
    ----------
    table : DataFrame
    precision : int
        Decimals of every float column (``-0.000`` is shown as ``0.000``, NaN as a dash,
        booleans as yes/no).
    formats : mapping of column to format string, optional
        Other formats for some columns, e.g. ``{"p": "{:.1e}"}`` for p-values.
    index : bool
        Show the index, as the first column (for a table whose index names its rows).
    escape : bool
        Show text cells as text (a class named ``<`` or a rule ``r < 0`` would otherwise be read
        as HTML); False for cells that carry markup of their own.
    """
    formats = dict(formats or {})
    if index:  # the index becomes the first column: one header row, not two
        table = table.rename_axis(table.index.name or "").reset_index()
    styler = table.style.format(lambda v: _number(v, precision), escape="html" if escape else None)
    for column, spec in formats.items():
        styler = styler.format(spec, subset=[column], na_rep="–")
    styler = styler.set_table_styles(
        [
            {"selector": "th, td", "props": "padding: 0.2em 0.7em; vertical-align: top;"},
            {"selector": "th", "props": "text-align: left;"},
        ]
    )
    return styler.hide(axis="index")


def caption_suffix(
    dataset: str,
    model: str | None,
    scale: str,
    n_tasks: int | None = None,
    unit: str = "task",
) -> str:
    """Return the sentence that ends every figure caption: data, model, scale and number of tasks.

    Parameters
    ----------
    dataset : str
        Dataset name, e.g. ``"glyphs"``.
    model : str or None
        Model name, or None when no model is involved.
    scale : str
        Scale the notebook ran at.
    n_tasks : int, optional
        Number of tasks (or of ``unit``) the figure summarises.
    unit : str
        What ``n_tasks`` counts, singular (``"(source, target) pair"``, ``"seed"``).

    Examples
    --------
    >>> caption_suffix("glyphs", "resnet20", "book", 40)
    'Data: glyphs; model: resnet20; scale: book; 40 tasks.'
    >>> caption_suffix("glyphs", None, "smoke")
    'Data: glyphs; no model; scale: smoke.'
    >>> caption_suffix("glyphs", "small_cnn", "book", 150, unit="(source, target) pair")
    'Data: glyphs; model: small_cnn; scale: book; 150 (source, target) pairs.'
    """
    parts = [f"Data: {dataset}", f"model: {model}" if model else "no model", f"scale: {scale}"]
    if n_tasks is not None:
        parts.append(f"{n_tasks} {unit}" + ("" if n_tasks == 1 else "s"))
    return "; ".join(parts) + "."
