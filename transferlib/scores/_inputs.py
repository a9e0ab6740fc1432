"""The validated inputs every feature-based score starts from."""

from __future__ import annotations

from typing import Any

from transferlib.scores._backend import Namespace, namespace
from transferlib.validation import (
    as_float_array,
    as_labels,
    binary_exponent,
    check_n_classes,
    check_same_length,
)

__all__ = ["centre", "feature_inputs", "in_safe_range", "normalised"]

#: Entries within [2**-250, 2**250] in magnitude keep every Gram matrix finite and its
#: relevant eigenvalues far above the subnormal range, so they are used as given.
_SAFE = (2.0**-250, 2.0**250)


def feature_inputs(features: Any, target_labels: Any) -> tuple[Namespace, Any, Any, int]:
    """``(xp, f, codes, k)``: features (n, d) on their backend, float64 or float32 (kept to
    save a full conversion: every score accumulates in float64, see :func:`centre`),
    target codes as an array of that backend, and the number of classes (at least two)."""
    xp = namespace(features)
    f = as_float_array(features, "features", keep_float32=True)
    codes, classes = as_labels(target_labels, "target_labels")
    check_same_length(features=f, target_labels=codes)
    check_n_classes(len(classes), 2, "target_labels")
    return xp, f, xp.asarray(codes, "int"), len(classes)


def in_safe_range(largest: float) -> bool:
    """Whether values of this largest magnitude can be used as given (0 included)."""
    return largest == 0.0 or _SAFE[0] <= largest <= _SAFE[1]


def normalised(xp: Namespace, x: Any) -> tuple[Any, int, int]:
    """``(y, e, r)``: ``y = x * 2**-e`` with its largest entry in [0.5, 1), or ``y = x``
    and ``e = 0`` when ``x`` is zero or its largest entry already lies within ``2**±250``;
    ``r`` is the binary exponent left in ``y`` (its largest entry is in [2**(r-1), 2**r)).

    Scaling by a power of two is exact, so a scale-invariant score computed on ``y`` is
    the score of ``x``, without overflow (``x`` near 1e300) or underflow (``x`` near
    1e-300) in its Gram matrix; scale-dependent scores carry ``e`` along, iterative ones
    use ``r`` to start from the same point at every scale.
    """
    largest = xp.max_abs(x)
    if in_safe_range(largest):
        return x, 0, binary_exponent(largest)
    exponent = binary_exponent(largest)
    return xp.ldexp(x, -exponent), exponent, 0


def centre(xp: Namespace, f: Any) -> Any:
    """Float64 features minus their column means (accumulated in float64), in one pass
    that also converts float32 input."""
    return f - xp.column_means(f)
