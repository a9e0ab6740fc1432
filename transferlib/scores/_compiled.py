"""Compiled loops for the reads that vectorised NumPy cannot fuse (numba).

LEEP needs, from an (n, |Z|) probability matrix, every row's sum and, per target class,
the sum of its rows each divided by its own sum; then every row's dot product with its
class's row of a small table. In NumPy either step gathers a copy of each class's rows
(a write as costly as the read), and the validation is one more pass. Here each step is
one pass over the matrix in storage order: the row is read from memory once and used
again from L1 cache. float32 is widened to float64 in registers.

Imported on first use (numba takes a quarter of a second to import); compiled
functions are cached on disk by numba, so a new process loads them instead of
compiling (about a second, once per machine and dtype).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["grouped_row_dots", "row_and_group_sums"]

# Reassociating sums lets the loops vectorise (BLAS reorders sums the same way); NaN and
# inf keep IEEE semantics, so a NaN entry still makes its row sum NaN. Division by zero
# gives inf as in NumPy, not ZeroDivisionError.
_jit = numba.njit(
    cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract", "nsz", "arcp"}
)


@_jit
def row_and_group_sums(
    values: np.ndarray, bits: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.integer, np.ndarray]:
    """Row sums of ``values`` (C-contiguous float32 or float64, shape (n, m)), the bitwise
    OR of all its entries' bits (``bits``: the same memory viewed as unsigned integers of
    the same width; the sign bit of the OR is set when an entry is negative, -0.0 or a
    negative NaN) and, for each of the ``n_groups`` groups, the sum of its rows divided by
    their row sums (shape (n_groups, m)); ``groups`` holds each row's group in
    ``[0, n_groups)``. Everything is accumulated in float64."""
    n, m = values.shape
    sums = np.empty(n)
    group_sums = np.zeros((n_groups, m))
    seen = bits[0, 0] ^ bits[0, 0]  # zero of the unsigned type (& 0 would widen to int64)
    for i in range(n):
        row, row_bits = values[i], bits[i]
        total = 0.0
        for j in range(m):
            total += np.float64(row[j])
            seen |= row_bits[j]
        sums[i] = total
        weight = 1.0 / total
        target = group_sums[groups[i]]
        for j in range(m):
            target[j] += np.float64(row[j]) * weight
    return sums, seen, group_sums


@_jit
def grouped_row_dots(values: np.ndarray, groups: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``values[i] @ table[groups[i]]`` for every row ``i``, in float64 (``values``
    C-contiguous float32 or float64 of shape (n, m), ``table`` float64 of shape (g, m))."""
    n, m = values.shape
    out = np.empty(n)
    for i in range(n):
        row, weights = values[i], table[groups[i]]
        total = 0.0
        for j in range(m):
            total += np.float64(row[j]) * weights[j]
        out[i] = total
    return out
