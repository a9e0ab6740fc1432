"""The H-score chapter's figure helpers on hand-made tables: they draw what they are given."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from transferlib.plotting import hscore as plots


def _edges() -> pd.DataFrame:
    return pd.DataFrame(
        {"parent": ["a", "a", "b"], "child": ["b", "c", "d"], "transferability": [0.9, 0.2, 0.7]}
    )


def test_task_tree_drops_edges_below_the_salience_threshold():
    groups = dict.fromkeys("abcd", "2D")
    full = plots.plot_task_tree(_edges(), groups)
    salient = plots.plot_task_tree(_edges(), groups, salience=0.5, isolated=list("abcd"))
    labels = [t.get_text() for t in salient.axes[0].texts]
    assert isinstance(full, Figure)
    assert "0.20" in [t.get_text() for t in full.axes[0].texts] and "0.20" not in labels
    assert set("abcd") <= set(labels)  # c stands alone


def test_pixel_maps_keep_repeated_titles_in_order():
    maps = [("a", np.zeros((4, 4))), ("b", np.ones((4, 4))), ("a", np.full((4, 4), 0.5))]
    fig = plots.plot_pixel_maps(maps, ncols=3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["a\nmean 0.00", "b\nmean 1.00", "a\nmean 0.50"]


def test_score_figure_has_one_panel_per_measure_with_its_correlation():
    table = pd.DataFrame(
        {
            "h": [1.0, 2.0, 3.0, 4.0],
            "train_log_loss": [2.0, 1.5, 1.0, 0.4],
            "train_accuracy": [0.2, 0.4, 0.5, 0.9],
            "test_accuracy": [0.1, 0.3, 0.2, 0.5],
            "layer": list("wxyz"),
        }
    )
    fig = plots.plot_score_against_transfer(
        table, "h", xlabel="H", annotate="layer", reference=(2.5, -0.5, "theory")
    )
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "H"]
    assert len(panels) == 3 and panels[0].get_title().startswith("r = -1.00")  # r = -0.9989


def test_score_figure_draws_no_line_for_a_saturated_score():
    table = pd.DataFrame(
        {
            "t": [1.0, 1.0, 1.0],  # the normalised H-score of targets smaller than the dimension
            "train_log_loss": [2.0, 1.5, 1.0],
            "train_accuracy": [0.2, 0.4, 0.5],
            "test_accuracy": [0.1, 0.3, 0.2],
        }
    )
    fig = plots.plot_score_against_transfer(table, "t", xlabel="T")
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "T"]
    assert [ax.get_title() for ax in panels] == ["constant on every point: no fit"] * 3
    assert all(not ax.lines for ax in panels)
