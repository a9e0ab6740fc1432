"""Plotting helpers for the book: one style (:mod:`transferlib.plotting.style`) and one helper per
figure type in the chapter modules (e.g. :mod:`transferlib.plotting.nce`)."""

from transferlib.plotting.style import (
    BOOK_STYLE,
    CONCEPT_COLOURS,
    PALETTE,
    book_figure,
    book_table,
    caption_suffix,
    concept_colour,
    use_book_style,
)

__all__ = [
    "BOOK_STYLE",
    "CONCEPT_COLOURS",
    "PALETTE",
    "book_figure",
    "book_table",
    "caption_suffix",
    "concept_colour",
    "use_book_style",
]
