"""Plotting helpers for the book: one style (:mod:`transferlib.plotting.style`) and one helper per
figure type in the chapter modules (e.g. :mod:`transferlib.plotting.nce`)."""

from transferlib.plotting.style import BOOK_STYLE, PALETTE, caption_suffix, use_book_style

__all__ = ["BOOK_STYLE", "PALETTE", "caption_suffix", "use_book_style"]
