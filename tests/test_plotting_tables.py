"""The book's tables: numbers rounded, text shown as text."""

from __future__ import annotations

import pandas as pd

from transferlib.plotting import book_table


def test_text_cells_are_escaped_unless_they_carry_markup():
    table = pd.DataFrame({"classes": ["> / <", "r < 0 & p"], "r": [0.12345, float("nan")]})
    html = book_table(table).to_html()
    assert "&gt; / &lt;" in html and "r &lt; 0 &amp; p" in html
    assert "0.123<" in html and "–" in html  # numbers rounded, NaN a dash
    marked = book_table(pd.DataFrame({"verdict": ["<b>holds</b>"]}), escape=False).to_html()
    assert "<b>holds</b>" in marked
