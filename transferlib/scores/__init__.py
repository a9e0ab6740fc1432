"""Transferability scores, each exactly as its paper defines it.

NumPy input is computed with NumPy (torch is never imported); torch tensors are
computed with torch on their own device. Every score returns a Python float and
raises ValueError/TypeError on bad input. See :data:`SCORES` to loop over them.
"""

from transferlib.scores import p2l
from transferlib.scores._registry import SCORES, ScoreInfo
from transferlib.scores.gbc import gbc
from transferlib.scores.hscore import (
    h_score,
    h_score_transferability,
    hgr_maximal_correlation,
    shrinkage_h_score,
)
from transferlib.scores.hscore_batch import h_scores
from transferlib.scores.label_based import conditional_entropy, hardness, nce
from transferlib.scores.leep import eep_predictions, leep
from transferlib.scores.logme import logme
from transferlib.scores.nleep import nleep
from transferlib.scores.transrate import transrate

__all__ = [
    "SCORES",
    "ScoreInfo",
    "conditional_entropy",
    "eep_predictions",
    "gbc",
    "h_score",
    "h_score_transferability",
    "h_scores",
    "hardness",
    "hgr_maximal_correlation",
    "leep",
    "logme",
    "nce",
    "nleep",
    "p2l",
    "shrinkage_h_score",
    "transrate",
]
