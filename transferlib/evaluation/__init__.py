"""Statistics the papers report: correlations, ranking metrics, transferability levels
and regression lines with confidence bands."""

from transferlib.evaluation.correlation import kendall, pearson, spearman, weighted_kendall
from transferlib.evaluation.levels import transferability_levels
from transferlib.evaluation.ranking import best_in_top_k, dcg, ndcg, relative_top_k_accuracy
from transferlib.evaluation.regression import LinearFit, linear_fit_with_ci

__all__ = [
    "LinearFit",
    "best_in_top_k",
    "dcg",
    "kendall",
    "linear_fit_with_ci",
    "ndcg",
    "pearson",
    "relative_top_k_accuracy",
    "spearman",
    "transferability_levels",
    "weighted_kendall",
]
