"""Experiment runners behind the book's paper chapters.

Each module reproduces one paper and returns tidy :class:`pandas.DataFrame` tables (one row per
task) that the chapter's notebooks plot. Runners cache trained networks and per-task rows, so an
interrupted sweep resumes and a rebuilt book reloads instead of retraining.
"""

from transferlib.experiments import nce

__all__ = ["nce"]
