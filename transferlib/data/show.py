"""Figures and tables describing a dataset, for the book."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from transferlib.data.dataset import ImageDataset

__all__ = ["attribute_table", "show_grid"]


def show_grid(
    dataset: ImageDataset,
    n: int = 32,
    label: str | Sequence[str] | None = None,
    *,
    indices: np.ndarray | None = None,
    ncols: int = 8,
    seed: int = 0,
    panel_size: float = 1.1,
):
    """Grid of sample images, each titled with its value of ``label``.

    Parameters
    ----------
    dataset : ImageDataset
        Dataset to draw from.
    n : int
        Number of images (random, seeded), unless ``indices`` is given.
    label : str or sequence of str, optional
        Label column(s) shown as the title, one line each (default: the dataset's
        default target). Binary attributes are shown by name when positive.
    indices : numpy.ndarray, optional
        Rows to show, in order.
    ncols : int
        Images per row.
    seed : int
        Seed of the random choice of rows.
    panel_size : float
        Width and height of one panel in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Closed in pyplot, so it appears only where it is displayed or glued.
    """
    from transferlib.plotting.style import book_figure

    label = dataset.metadata.get("default_target") if label is None else label
    if indices is None:
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(len(dataset), size=min(n, len(dataset)), replace=False))
    indices = np.asarray(indices)
    images = np.asarray(dataset.images[indices])
    columns = [] if label is None else [label] if isinstance(label, str) else list(label)
    lines = []
    for column in columns:
        codes = dataset.column(column)[indices]
        if column in dataset.attribute_kinds:
            lines.append([column if c else "" for c in codes])
        else:
            names = dataset.label_names.get(column)
            lines.append([names[c] if names is not None else str(c) for c in codes])
    titles = (
        ["\n".join(t for t in parts if t) for parts in zip(*lines)]
        if lines
        else [""] * len(indices)
    )
    nrows = int(np.ceil(len(indices) / ncols))
    height = panel_size + 0.15 * len(columns)  # room for one title line per column
    # Closed in pyplot: a page that glues the grid shows it once, with its caption.
    fig, axes = book_figure(
        nrows,
        ncols,
        figsize=(ncols * panel_size, nrows * height),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        picture = image.transpose(1, 2, 0)
        ax.imshow(
            picture[..., 0] if picture.shape[-1] == 1 else picture,
            cmap="gray" if picture.shape[-1] == 1 else None,
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        ax.set_title(title, fontsize=8, pad=2)
    return fig


def attribute_table(dataset: ImageDataset, split: str | None = None) -> pd.DataFrame:
    """One row per binary attribute: kind, positive rate and how it is generated.

    ``split`` restricts the positive rate to one split (default: all images).
    """
    rows = slice(None) if split is None else dataset.splits[split]
    labels = dataset.labels.iloc[rows] if split is not None else dataset.labels
    descriptions = dataset.metadata.get("attribute_descriptions", {})
    return pd.DataFrame(
        {
            "attribute": dataset.attributes,
            "kind": [dataset.attribute_kinds[a] for a in dataset.attributes],
            "positive_rate": [float(labels[a].mean()) for a in dataset.attributes],
            "description": [descriptions.get(a, "") for a in dataset.attributes],
        }
    )
