"""Argument validation for every layer of transferlib: the one leaf module they all share.

:mod:`transferlib.scores` and :mod:`transferlib.evaluation` import nothing from the rest of
the package except this module, and this module imports nothing from transferlib. At module
level it imports only NumPy. A torch tensor is recognised through ``sys.modules`` (if torch
was never imported, no object can be a tensor), so NumPy input never imports torch, and a
tensor is checked with its own methods on its own device.

Conventions shared by every helper:

- the first argument is the value, the second the name the caller's user knows it by, and
  every message names that argument and the problem;
- ``TypeError`` for a value of the wrong kind (a string or ``None`` where a number is needed,
  a float where an integer is needed, ``True`` where a number is needed, labels that mix
  ``0`` and ``'0'``); ``ValueError`` for a value of the right kind that is not allowed (wrong
  shape, empty, NaN or inf, out of range, rows that are not distributions);
- arrays come back on the caller's library: NumPy stays NumPy and a tensor stays a tensor on
  its device, unless ``numpy=True`` asks for NumPy.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "as_labels",
    "as_probabilities",
    "as_vector_pair",
    "binary_exponent",
    "check_bool",
    "check_choice",
    "check_images",
    "check_int",
    "check_n_classes",
    "check_probability_rows",
    "check_real",
    "check_same_length",
    "check_task",
    "is_tensor",
    "probability_atol",
    "probability_matrix",
    "probability_summaries",
    "to_numpy",
]

#: Rows of a (n, k) probability matrix validated per block (about 1 MB), so each block is
#: read from memory once and its row sums, minimum and column mass are taken in cache.
_BLOCK_BYTES = 1 << 20


def is_tensor(x: Any) -> bool:
    """True when ``x`` is a torch tensor (checked without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy view or copy of ``x``; tensors are detached and moved to the CPU (bfloat16,
    which NumPy lacks, becomes float32, which holds every bfloat16 value exactly)."""
    if is_tensor(x):
        torch = sys.modules["torch"]
        x = x.detach()
        if x.dtype == torch.bfloat16:
            x = x.float()
        return x.cpu().numpy()
    return np.asarray(x)


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


# -- scalars ----------------------------------------------------------------------------------


def _check_bounds(
    value: float,
    name: str,
    minimum: float | None,
    maximum: float | None,
    strict_minimum: bool,
    strict_maximum: bool,
) -> None:
    if minimum is not None and (value <= minimum if strict_minimum else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict_minimum else '>='} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if strict_maximum else value > maximum):
        raise ValueError(f"{name} must be {'<' if strict_maximum else '<='} {maximum}, got {value}")


def check_int(
    value: Any,
    name: str,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    allow_none: bool = False,
) -> int | None:
    """Return ``value`` as a Python int in ``[minimum, maximum]``.

    Python and NumPy integers are accepted; bools, floats (even ``2.0``), strings and
    ``None`` (unless ``allow_none``) raise TypeError; values outside the bounds raise
    ValueError.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_describe(value)}")
    value = int(value)
    _check_bounds(value, name, minimum, maximum, False, False)
    return value


def check_real(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    strict_maximum: bool = False,
    allow_none: bool = False,
) -> float | None:
    """Return ``value`` as a finite Python float within the given bounds.

    Real numbers (Python or NumPy, ints included) are accepted; bools, strings, complex
    numbers and ``None`` (unless ``allow_none``) raise TypeError; NaN, inf and values
    outside the bounds raise ValueError. ``strict_*`` makes a bound exclusive.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    _check_bounds(value, name, minimum, maximum, strict_minimum, strict_maximum)
    return value


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` if it is a bool (Python or NumPy); anything else raises TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {_describe(value)}")
    return bool(value)


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of the strings ``choices``.

    A non-string raises TypeError, an unknown string ValueError; both list the choices.
    """
    listed = ", ".join(repr(c) for c in choices)
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {listed}, got {_describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


# -- arrays -----------------------------------------------------------------------------------


def _numeric_numpy(x: Any, name: str) -> np.ndarray:
    """NumPy array of bools, integers or floats (object arrays of numbers are converted)."""
    if x is None:
        raise TypeError(f"{name} must be a real numeric array, got None")
    try:
        arr = np.asarray(x)
    except ValueError as err:  # ragged nested sequences
        raise ValueError(f"{name} could not be converted to an array: {err}") from None
    if arr.dtype.kind == "O":
        if any(v is None for v in arr.flat):  # astype(float) would turn None into NaN
            raise TypeError(f"{name} must be a real numeric array, got None entries")
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a real numeric array, got dtype object") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    return arr


def _check_shape(shape: tuple[int, ...], name: str, ndim: int | tuple[int, ...]) -> None:
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if len(shape) not in allowed:
        wanted = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {wanted}, got shape {shape}")
    if 0 in shape:
        raise ValueError(f"{name} is empty (shape {shape})")


def _real_array(x: Any, name: str, ndim: int | tuple[int, ...], numpy: bool) -> Any:
    """Shape- and kind-checked array, not yet converted or checked for NaN/inf."""
    if is_tensor(x) and not numpy:
        if x.is_complex():
            raise TypeError(f"{name} must be a real numeric array, got dtype {x.dtype}")
        _check_shape(tuple(x.shape), name, ndim)
        return x.detach()
    arr = _numeric_numpy(to_numpy(x) if is_tensor(x) else x, name)
    _check_shape(arr.shape, name, ndim)
    return arr


def _to_float(arr: Any, keep_float32: bool) -> Any:
    if is_tensor(arr):
        torch = sys.modules["torch"]
        keep = arr.dtype == torch.float64 or (keep_float32 and arr.dtype == torch.float32)
        return arr if keep else arr.to(torch.float64)
    keep = arr.dtype == np.float64 or (keep_float32 and arr.dtype == np.float32)
    return arr if keep else arr.astype(np.float64)


def as_float_array(
    x: Any,
    name: str,
    *,
    ndim: int | tuple[int, ...] = 2,
    keep_float32: bool = False,
    numpy: bool = False,
) -> Any:
    """Return ``x`` as a finite floating array with ``ndim`` dimensions (an int or a tuple).

    Bools, integers and floats are accepted; the result is float64, or float32 for float32
    input when ``keep_float32``. A tensor stays a tensor on its device unless ``numpy``.
    Raises TypeError for non-numeric or complex data and ValueError for a wrong number of
    dimensions, an empty array or NaN/inf.
    """
    arr = _to_float(_real_array(x, name, ndim, numpy), keep_float32)
    if is_tensor(arr):
        finite = bool(arr.isfinite().all())
    else:  # a NaN or inf entry makes the sum non-finite: one pass, no boolean temporary;
        # only a sum that overflows from finite entries needs the entry-wise check
        with np.errstate(over="ignore", invalid="ignore"):
            finite = bool(np.isfinite(arr.sum())) or bool(np.isfinite(arr).all())
    if not finite:
        raise ValueError(f"{name} contains NaN or inf")
    return arr


_LABEL_KINDS = {"b": "bool", "i": "number", "u": "number", "f": "number", "U": "str", "S": "bytes"}


def _label_kind(value: Any) -> str | None:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Real):
        return "number"
    if isinstance(value, (str, np.str_)):
        return "str"
    if isinstance(value, (bytes, np.bytes_)):
        return "bytes"
    return None


def _label_array(y: Any, name: str) -> np.ndarray:
    """1-D label array whose values are all of one kind (numbers, strings, bytes or bools)."""
    if y is None:
        raise TypeError(f"{name} must be a sequence of numbers, strings or bools, got None")
    if (isinstance(y, np.ndarray) and y.dtype.kind != "O") or is_tensor(y):
        arr = to_numpy(y)
        if arr.dtype.kind not in _LABEL_KINDS:
            raise TypeError(f"{name} must hold numbers, strings or bools, got dtype {arr.dtype}")
        return arr
    try:
        # dtype=object keeps each value's own type: np.asarray([0, '0']) would make both '0'
        raw = np.asarray(y, dtype=object)
    except ValueError as err:
        raise ValueError(f"{name} could not be converted to an array: {err}") from None
    if raw.ndim != 1:
        return raw  # the caller reports the shape
    kinds = {_label_kind(v) for v in raw}
    if None in kinds:
        bad = next(v for v in raw if _label_kind(v) is None)
        raise TypeError(f"{name} must hold numbers, strings or bools, got {_describe(bad)}")
    if len(kinds) > 1:
        raise TypeError(
            f"{name} mixes label types ({', '.join(sorted(kinds))}); values such as 0 and '0' "
            "would be ambiguous, so use one type"
        )
    return np.asarray(raw.tolist()) if raw.size else raw


def as_labels(y: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Re-encode a 1-D label sequence as codes ``0..k-1``; return ``(codes, classes)``.

    Labels may be numbers, strings, bytes or bools, but not a mixture of these kinds
    (TypeError: ``0`` and ``'0'`` would otherwise be merged or split depending on the
    container). ``classes`` is sorted and ``classes[codes]`` equals the input. Raises
    ValueError for a non-1-D or empty sequence and for NaN/inf labels.
    """
    arr = _label_array(y, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf")
    if arr.dtype.kind in "iu" and 0 <= arr.min() and arr.max() < 4 * arr.size:
        # small non-negative integer codes (the usual case): O(n) counting instead of a sort
        present = np.bincount(arr) > 0
        return (np.cumsum(present) - 1)[arr], np.flatnonzero(present).astype(arr.dtype)
    classes, codes = np.unique(arr, return_inverse=True)
    return codes.reshape(-1).astype(np.int64, copy=False), classes


def probability_atol(dtype: Any) -> float:
    r"""Default tolerance on the row sums of probabilities stored in ``dtype``.

    :math:`\max(10^{-5}, 2\epsilon)` with :math:`\epsilon` the dtype's machine epsilon:
    rounding every entry of an exact distribution moves its row sum by at most
    :math:`\epsilon/2`, so float16 (:math:`\approx 2 \cdot 10^{-3}`) and bfloat16
    (:math:`\approx 1.6 \cdot 10^{-2}`) softmax outputs pass; float32 and float64 keep
    :math:`10^{-5}`, which still rejects logits.
    """
    text = str(dtype)
    name = text.removeprefix("torch.") if text.startswith("torch.") else np.dtype(dtype).name
    eps = {"float16": 2.0**-10, "bfloat16": 2.0**-7, "float32": 2.0**-23}.get(name, 0.0)
    return max(1e-5, 2.0 * eps)


def probability_matrix(
    p: Any, name: str, *, atol: float | None = None, keep_float32: bool = False
) -> tuple[Any, float]:
    """A (n, k) matrix meant to hold probability distributions in its rows, checked for
    kind and shape but not yet read, and the tolerance on its row sums.

    The matrix comes back float64 (a tensor stays on its device; a NumPy float32 matrix
    stays float32 when ``keep_float32``, for a caller that widens it as it reads). The
    tolerance is ``atol`` (checked to lie in [0, 1), so every accepted row sum is
    positive) or, by default, :func:`probability_atol` of the input's dtype, so
    half-precision softmax output is accepted. A caller that reads the values itself
    passes the matrix and what it read to :func:`check_probability_rows`;
    :func:`as_probabilities` does both. Raises TypeError for non-numeric data and
    ValueError for a wrong shape.
    """
    arr = _real_array(p, name, 2, numpy=False)
    tol = probability_atol(arr.dtype)
    if atol is not None:
        tol = check_real(atol, "atol", minimum=0.0, maximum=1.0, strict_maximum=True)
    return _to_float(arr, keep_float32=keep_float32 and not is_tensor(arr)), tol


def check_probability_rows(
    probs: Any, row_sums: Any, lowest: float, name: str, atol: float
) -> None:
    """Raise ValueError unless ``probs``, read as ``row_sums`` (its row sums) and ``lowest``
    (its smallest entry, or any number >= 0 when no entry is negative), holds probability
    distributions: every entry finite and non-negative, every row sum within ``atol`` of 1.

    A NaN or inf entry makes its row sum non-finite; only then is ``probs`` read again, to
    tell such an entry from finite entries whose sum overflows. The message for bad row
    sums points out that logits are not accepted.
    """
    sums = to_numpy(row_sums)
    if not (np.isfinite(sums).all() and math.isfinite(lowest)):
        finite = probs.isfinite().all() if is_tensor(probs) else np.isfinite(probs).all()
        if not finite:
            raise ValueError(f"{name} contains NaN or inf")
        raise ValueError(f"{name} rows must sum to 1 (a row sum overflows); pass probabilities")
    if lowest < 0:
        raise ValueError(f"{name} has negative entries; rows must be probability distributions")
    deviation = float(np.abs(sums - 1.0).max())
    if deviation > atol:
        raise ValueError(
            f"{name} rows must sum to 1 (largest deviation {deviation:.3g} > atol={atol:g}); "
            "pass probabilities, not logits"
        )


def probability_summaries(probs: Any, *, column_mass: bool = False) -> tuple[Any, float, Any]:
    """Row sums (float64), smallest entry and, when ``column_mass``, the column sums of
    the rows each divided by its sum (else None) of a float matrix: NumPy blocks of about
    1 MB are read from memory once and summarised in cache (float32 is widened block by
    block); tensors with their own methods. The values are meaningful once
    :func:`check_probability_rows` has accepted the first two."""
    if is_tensor(probs):
        sums = probs.sum(dim=1)
        return sums, float(probs.min()), (1.0 / sums) @ probs if column_mass else None
    rows = max(1, _BLOCK_BYTES // (probs.shape[1] * 8))
    ones = np.ones(probs.shape[1])
    sums, lowest = np.empty(probs.shape[0]), np.inf
    mass = np.zeros(probs.shape[1]) if column_mass else None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # reported by the check
        for start in range(0, probs.shape[0], rows):
            block = probs[start : start + rows]
            lowest = min(lowest, float(block.min()))  # NaN propagates through min
            block = block.astype(np.float64, copy=False)  # float32: widened in cache
            block_sums = np.dot(block, ones, out=sums[start : start + rows])
            if column_mass:
                mass += (1.0 / block_sums) @ block
    return sums, lowest, mass


def as_probabilities(p: Any, name: str, *, atol: float | None = None) -> Any:
    """Validate a (n, k) matrix whose rows are probability distributions; return it as
    float64 (a tensor stays on its device).

    Entries must be finite and non-negative and every row must sum to 1 within ``atol``
    (see :func:`probability_matrix` for the default and :func:`check_probability_rows` for
    the rules). Raises TypeError for non-numeric data and ValueError otherwise.
    """
    arr, tol = probability_matrix(p, name, atol=atol)
    sums, lowest, _ = probability_summaries(arr)
    check_probability_rows(arr, sums, lowest, name, tol)
    return arr


def as_vector_pair(
    x: Any, y: Any, names: tuple[str, str], *, minimum: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Two finite float64 NumPy vectors of equal length, at least ``minimum`` long (paired
    samples; tensors are moved to the CPU). Raises as :func:`as_float_array` and
    ValueError for unequal or too short lengths."""
    a = as_float_array(x, names[0], ndim=1, numpy=True)
    b = as_float_array(y, names[1], ndim=1, numpy=True)
    check_same_length(**{names[0]: a, names[1]: b})
    if a.size < minimum:
        raise ValueError(f"{names[0]} and {names[1]} need at least {minimum} values, got {a.size}")
    return a, b


def binary_exponent(largest: float) -> int:
    """The ``e`` with ``largest * 2**-e`` in [0.5, 1) (0 for 0): the exponent by which a
    scale-invariant statistic rescales finite input with ``numpy.ldexp(x, -e)``.

    Scaling by a power of two is exact (subnormals included), so the statistic of the
    scaled values is that of the input, without overflow (values near 1e308) or
    underflow (near 1e-300).
    """
    return 0 if largest == 0.0 else math.frexp(largest)[1]


def check_same_length(**arrays: Any) -> int:
    """Raise ValueError unless all arrays have the same first dimension; return it."""
    lengths = {name: int(a.shape[0]) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise ValueError(f"length mismatch: {described}")
    return next(iter(lengths.values()))


def check_n_classes(n_classes: int, minimum: int, name: str) -> None:
    """Raise ValueError when a label sequence has fewer than ``minimum`` distinct values."""
    if n_classes < minimum:
        raise ValueError(f"{name} has {n_classes} class(es); at least {minimum} are needed")


def check_images(images: Any, name: str = "images") -> None:
    """Images must be a non-empty (N, C, H, W) uint8 array or tensor with C in {1, 3}."""
    shape = getattr(images, "shape", None)
    if shape is None or len(shape) != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {shape}")
    if shape[1] not in (1, 3):
        raise ValueError(f"{name} must have 1 or 3 channels in axis 1, got shape {tuple(shape)}")
    if shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if str(getattr(images, "dtype", None)).removeprefix("torch.") != "uint8":
        raise TypeError(f"{name} must be uint8, got {getattr(images, 'dtype', None)}")


def check_task(data: Any, name: str, num_outputs: int | None = None) -> np.ndarray:
    """Validate a TaskData-like object (``.images``, ``.labels``); return its labels as int64.

    Labels must be integer codes ``>= 0``, one per image, and below ``num_outputs`` (the
    model's head) when it is given.
    """
    for attribute in ("images", "labels"):
        if not hasattr(data, attribute):
            raise TypeError(
                f"{name} must be a TaskData (with .images and .labels), got {type(data).__name__}"
            )
    check_images(data.images, f"{name}.images")
    labels = to_numpy(data.labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(
            f"{name}.labels must be a 1-d integer array, got {labels.dtype} {labels.shape}"
        )
    if len(labels) != len(data.images):
        raise ValueError(f"{name} has {len(data.images)} images but {len(labels)} labels")
    if labels.min() < 0:
        raise ValueError(f"{name}.labels must be codes >= 0, got {labels.min()}")
    if num_outputs is not None and labels.max() >= num_outputs:
        raise ValueError(
            f"{name}.labels go up to {labels.max()} but the model's head has {num_outputs} outputs"
        )
    return labels.astype(np.int64, copy=False)
