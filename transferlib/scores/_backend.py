"""A tiny array-namespace shim: the same maths with NumPy or with torch.

NumPy input is computed with NumPy and never imports torch; a torch tensor is
computed with torch on the tensor's own device. Only the handful of operations
the scores need are wrapped; everything else (``@``, ``+``, ``.T``, indexing) is
shared syntax of both libraries. Arrays are float64 unless an operation says otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from transferlib.validation import is_tensor

__all__ = ["Namespace", "namespace"]


class Namespace:
    """Operations for one backend; ``device`` is None for NumPy."""

    def __init__(self, torch_module: Any = None, device: Any = None) -> None:
        self.torch = torch_module
        self.device = device

    # -- construction -----------------------------------------------------------------
    def asarray(self, x: Any, dtype: str = "float") -> Any:
        """Float64 (``dtype="float"``) or int64 (``"int"``) array on this backend."""
        if self.torch is None:
            return np.asarray(x, dtype=np.float64 if dtype == "float" else np.int64)
        t = self.torch
        target = t.float64 if dtype == "float" else t.int64
        if isinstance(x, t.Tensor):
            return x.to(device=self.device, dtype=target)
        return t.as_tensor(np.asarray(x), device=self.device).to(target)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        if self.torch is None:
            return np.zeros(shape)
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def empty(self, shape: tuple[int, ...]) -> Any:
        """Uninitialised float64 array (a buffer the caller fills)."""
        if self.torch is None:
            return np.empty(shape)
        return self.torch.empty(shape, dtype=self.torch.float64, device=self.device)

    def copy(self, a: Any) -> Any:
        return a.copy() if self.torch is None else a.clone()

    def take_rows(self, x: Any, index: Any, out: Any = None) -> Any:
        """Rows ``index`` of ``x`` as a contiguous array, written into ``out`` when given (a
        reused buffer of ``x``'s dtype: no fresh memory to fault in every time).
        ``numpy.take`` is faster than fancy indexing for this; with ``out`` it runs with
        ``mode="clip"``, which writes there directly (``"raise"`` goes through a
        temporary), so ``index`` must be valid."""
        if self.torch is None:
            return np.take(x, index, axis=0, out=out, mode="raise" if out is None else "clip")
        if out is None:
            return self.torch.index_select(x, 0, index)
        return self.torch.index_select(x, 0, index, out=out)

    def stack(self, rows: list[Any]) -> Any:
        return np.stack(rows) if self.torch is None else self.torch.stack(rows)

    def concatenate(self, arrays: list[Any]) -> Any:
        """Join matrices side by side (along columns)."""
        if self.torch is None:
            return np.concatenate(arrays, axis=1)
        return self.torch.cat(arrays, dim=1)

    def add_diagonal(self, a: Any, value: Any, zero_first: bool = False) -> Any:
        """Add ``value`` (a scalar or a vector) to the diagonal of the square matrix ``a``
        in place, after setting it to zero if ``zero_first``; return ``a``."""
        if self.torch is not None:
            if zero_first:
                a.diagonal().zero_()
            a.diagonal().add_(value)
            return a
        index = np.diag_indices(a.shape[0])
        a[index] = (0.0 if zero_first else a[index]) + value
        return a

    def one_hot(self, codes: Any, k: int) -> Any:
        """(n, k) float one-hot matrix of integer codes."""
        out = self.zeros((codes.shape[0], k))
        if self.torch is None:
            out[np.arange(codes.shape[0]), codes] = 1.0
        else:
            out[self.torch.arange(codes.shape[0], device=self.device), codes] = 1.0
        return out

    def class_sums(self, x: Any, codes: Any, k: int) -> Any:
        """(k, d) per-class sums of the rows of ``x`` (n, d): O(nd) with a sparse indicator
        product (NumPy) or ``index_add_`` (torch), instead of an O(nkd) dense product."""
        if self.torch is None:
            from scipy.sparse import csr_matrix

            n = codes.shape[0]
            indicator = csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(k, n))
            return np.asarray(indicator @ x)
        return self.zeros((k, x.shape[1])).index_add_(0, codes, x)

    # -- elementwise / reductions -------------------------------------------------------
    def log(self, x: Any) -> Any:
        return np.log(x) if self.torch is None else self.torch.log(x)

    def exp(self, x: Any) -> Any:
        return np.exp(x) if self.torch is None else self.torch.exp(x)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(x) if self.torch is None else self.torch.sqrt(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        if self.torch is None:
            return np.where(cond, a, b)
        return self.torch.where(cond, a, self.asarray(b) if not hasattr(b, "shape") else b)

    def maximum(self, x: Any, value: float) -> Any:
        return np.maximum(x, value) if self.torch is None else self.torch.clamp(x, min=value)

    def minimum(self, x: Any, value: float) -> Any:
        return np.minimum(x, value) if self.torch is None else self.torch.clamp(x, max=value)

    def ldexp(self, x: Any, exponent: int) -> Any:
        """``x * 2**exponent``, exact (a product with one float could overflow first)."""
        if self.torch is None:
            return np.ldexp(x, exponent)
        return self.torch.ldexp(x, self.torch.tensor(exponent, device=self.device))

    def sum(self, x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        if self.torch is None:
            return np.sum(x, axis=axis, keepdims=keepdims)
        if axis is None:
            return self.torch.sum(x)
        return self.torch.sum(x, dim=axis, keepdim=keepdims)

    def column_means(self, x: Any) -> Any:
        """(1, d) float64 column means, accumulated in float64 whatever the input dtype."""
        if self.torch is None:
            return x.mean(axis=0, dtype=np.float64, keepdims=True)
        return x.mean(dim=0, dtype=self.torch.float64, keepdim=True)

    def max(self, x: Any) -> Any:
        return np.max(x) if self.torch is None else self.torch.max(x)

    def argmax(self, x: Any) -> int:
        return int(np.argmax(x)) if self.torch is None else int(self.torch.argmax(x))

    def abs(self, x: Any) -> Any:
        return np.abs(x) if self.torch is None else self.torch.abs(x)

    def max_abs(self, x: Any) -> float:
        """Largest absolute entry (two reductions, no temporary)."""
        return max(-self.item(self.min(x)), self.item(self.max(x)))

    def column_max_abs(self, x: Any) -> Any:
        """(d,) largest absolute entry of every column."""
        if self.torch is None:
            return np.abs(x).max(axis=0)
        return x.abs().amax(dim=0)

    def min(self, x: Any) -> Any:
        return np.min(x) if self.torch is None else self.torch.min(x)

    def row_sq_norms(self, x: Any) -> Any:
        """Squared Euclidean norm of every row (no (n, d) temporary)."""
        if self.torch is None:
            return np.einsum("ij,ij->i", x, x)
        return self.torch.einsum("ij,ij->i", x, x)

    def log_softmax(self, x: Any) -> Any:
        """Row-wise log-softmax of a matrix (max-shifted, so any finite logits are safe)."""
        if self.torch is None:
            from scipy.special import log_softmax

            return log_softmax(x, axis=1)
        return self.torch.log_softmax(x, dim=1)

    def round(self, x: Any, decimals: int) -> Any:
        """Round half to even to ``decimals`` decimals (both libraries do so)."""
        if self.torch is None:
            return np.round(x, decimals)
        return self.torch.round(x, decimals=decimals)

    # -- ordering -----------------------------------------------------------------------
    def upper_triangle(self, a: Any) -> Any:
        """The entries strictly above the diagonal of a square matrix, row by row."""
        if self.torch is None:
            return a[np.triu_indices(a.shape[0], 1)]
        rows, cols = self.torch.triu_indices(a.shape[0], a.shape[0], 1, device=self.device)
        return a[rows, cols]

    def argsort(self, x: Any) -> Any:
        """Stable ascending argsort of a vector."""
        if self.torch is None:
            return np.argsort(x, kind="stable")
        return self.torch.argsort(x, stable=True)

    def searchsorted(self, sorted_values: Any, values: Any, side: str) -> Any:
        """Insertion indices of ``values`` in ascending ``sorted_values`` (``side`` left/right)."""
        if self.torch is None:
            return np.searchsorted(sorted_values, values, side=side)
        return self.torch.searchsorted(sorted_values, values, side=side)

    # -- linear algebra ---------------------------------------------------------------
    def gram(self, x: Any) -> Any:
        r"""The smaller Gram matrix, :math:`X^\top X` (d < n) or :math:`XX^\top` (d >= n)."""
        return x.T @ x if x.shape[1] < x.shape[0] else x @ x.T

    def frobenius(self, a: Any) -> float:
        """Frobenius norm of a matrix."""
        if self.torch is None:
            return float(np.linalg.norm(a))
        return float(self.torch.linalg.matrix_norm(a))

    def eigh(self, a: Any) -> tuple[Any, Any]:
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix."""
        if self.torch is None:
            return np.linalg.eigh(a)
        return self.torch.linalg.eigh(a)

    def eigvalsh(self, a: Any) -> Any:
        """Eigenvalues (ascending) of a symmetric matrix."""
        if self.torch is None:
            return np.linalg.eigvalsh(a)
        return self.torch.linalg.eigvalsh(a)

    def cholesky(self, a: Any) -> Any | None:
        """Lower Cholesky factor, or None when ``a`` is not numerically positive definite."""
        if self.torch is None:
            from scipy.linalg import LinAlgError, cholesky

            try:
                return cholesky(a, lower=True, check_finite=False)
            except LinAlgError:
                return None
        factor, info = self.torch.linalg.cholesky_ex(a)
        return None if int(info) != 0 else factor

    def solve_lower(self, lower: Any, b: Any, transpose: bool = False) -> Any:
        """Solve ``lower @ x = b`` (or ``lower.T @ x = b``) for a lower-triangular matrix."""
        if self.torch is None:
            from scipy.linalg import solve_triangular

            return solve_triangular(lower, b, lower=True, trans=int(transpose), check_finite=False)
        if transpose:
            return self.torch.linalg.solve_triangular(lower.mT, b, upper=True)
        return self.torch.linalg.solve_triangular(lower, b, upper=False)

    def log_diagonal_sum(self, factor: Any) -> float:
        r""":math:`\sum_i \log L_{ii}` of a triangular factor."""
        if self.torch is None:
            return float(np.log(np.diagonal(factor)).sum())
        return float(self.torch.log(self.torch.diagonal(factor)).sum())

    def to_numpy(self, x: Any) -> np.ndarray:
        if self.torch is None:
            return np.asarray(x)
        return x.detach().cpu().numpy()

    def item(self, x: Any) -> float:
        return float(x) if self.torch is None else float(x.item())


_NUMPY = Namespace()


def namespace(*arrays: Any) -> Namespace:
    """The namespace of the first torch tensor among ``arrays`` (its device), else NumPy."""
    for x in arrays:
        if is_tensor(x):
            return Namespace(sys.modules["torch"], x.device)
    return _NUMPY
