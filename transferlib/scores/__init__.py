"""Transferability scores, each exactly as its paper defines it.

Argument convention, the same for every score: the source side comes first (source
labels, source-model probabilities or source features on the target inputs), the target
labels last, as in TLlib and the LogME repository: ``nce(source_labels, target_labels)``,
``leep(source_probs, target_labels)``, ``h_score(features, target_labels)``. The one
exception is :func:`conditional_entropy`, which keeps the mathematical order
:math:`H(Y \\mid Z)` and therefore takes keyword-only arguments
(``conditional_entropy(target_labels=y, source_labels=z)``).

NumPy input is computed with NumPy (torch is never imported); torch tensors are
computed with torch on their own device. Every score returns a Python float and, on
finite input, either a finite value or a ``ValueError``/``TypeError`` whose message names
the argument and the problem; each score's docstring states its answer for degenerate
input. This package and :mod:`transferlib.evaluation` import nothing from the rest of
transferlib except :mod:`transferlib.validation`, the one leaf module that validates
every argument. See :data:`SCORES` to loop over the scores.
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
