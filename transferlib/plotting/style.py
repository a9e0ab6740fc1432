"""One figure style for the whole book, and the caption suffix every figure ends with."""

from __future__ import annotations

import matplotlib as mpl

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
    "p2l": "#000000",
    # source models
    "efficientnet_lite0": "#56B4E9",
    "efficientnet_lite1": "#0072B2",
    "efficientnet_lite2": "#1F3A93",
    "small_cnn": "#E69F00",
    "resnet20": "#D55E00",
    "resnet18": "#8C564B",
    "small_cnn_narrow": "#F0E442",
    # statistics drawn in every chapter
    "fit": "#0072B2",
    "not significant": "#BBBBBB",
    "baseline": "#7F7F7F",
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


def caption_suffix(dataset: str, model: str | None, scale: str, n_tasks: int | None = None) -> str:
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
        Number of tasks the figure summarises.

    Examples
    --------
    >>> caption_suffix("glyphs", "resnet20", "book", 40)
    'Data: glyphs; model: resnet20; scale: book; 40 tasks.'
    >>> caption_suffix("glyphs", None, "smoke")
    'Data: glyphs; no model; scale: smoke.'
    """
    parts = [f"Data: {dataset}", f"model: {model}" if model else "no model", f"scale: {scale}"]
    if n_tasks is not None:
        parts.append(f"{n_tasks} task" + ("" if n_tasks == 1 else "s"))
    return "; ".join(parts) + "."
