"""Transferability scores, each exactly as its paper defines it.

Argument convention, the same for every score: the source side comes first (source
labels, source-model probabilities or source features on the target inputs), the target
labels last, as in TLlib and the LogME repository: ``nce(source_labels, target_labels)``,
``leep(source_probs, target_labels)``, ``h_score(features, target_labels)``. The one
exception is :func:`conditional_entropy`, which keeps the mathematical order
:math:`H(Y \\mid Z)` and therefore takes keyword-only arguments
(``conditional_entropy(target_labels=y, source_labels=z)``).

NumPy input is computed with NumPy (torch is never imported); torch tensors are
computed with torch on their own device. Precision: every score computes in float64.
Float32 features are read as float32 and converted in the first pass that touches them
(the centring pass where there is one); Gram products stay in float64 because a float32
Gram product loses accuracy in proportion to the condition number (H-score on rotated
spectra, n = 5000, d = 512: relative errors 3e-7, 1.5e-5 and 4e-3 at condition numbers
1e4, 1e6 and 1e8), and penultimate-layer features commonly exceed 1e6. Probabilities of
any float dtype, float16 and bfloat16 included, are accepted with a row-sum tolerance
that follows the dtype. Every score returns a Python float and, on
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
