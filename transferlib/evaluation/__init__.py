"""Statistics the papers report: correlations, ranking metrics, transferability levels
and regression lines with confidence bands.

Pure functions on NumPy (tensors are moved to the CPU); every argument is checked by
:mod:`transferlib.validation`, the only transferlib module this package imports. On
finite input each function returns finite values or raises ValueError/TypeError naming
the argument; statistics that do not depend on the scale of their input are computed on
values rescaled by exact powers of two, so magnitudes near 1e-300 or 1e300 work.
"""

from transferlib.evaluation.correlation import kendall, pearson, spearman, weighted_kendall
from transferlib.evaluation.levels import transferability_levels
from transferlib.evaluation.likelihood import kbar_accuracy, log_likelihood, mixture_log_likelihood
from transferlib.evaluation.ranking import (
    best_in_top_k,
    dcg,
    ndcg,
    relative_top_k_accuracy,
    top_k_regret,
)
from transferlib.evaluation.regression import LinearFit, linear_fit_with_ci

__all__ = [
    "LinearFit",
    "best_in_top_k",
    "dcg",
    "kbar_accuracy",
    "kendall",
    "linear_fit_with_ci",
    "log_likelihood",
    "mixture_log_likelihood",
    "ndcg",
    "pearson",
    "relative_top_k_accuracy",
    "spearman",
    "top_k_regret",
    "transferability_levels",
    "weighted_kendall",
]
