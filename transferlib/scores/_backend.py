"""A tiny array-namespace shim: the same maths with NumPy or with torch.

NumPy input is computed with NumPy and never imports torch; a torch tensor is
computed with torch on the tensor's own device. Only the handful of operations
the scores need are wrapped; everything else (``@``, ``+``, ``.T``, indexing) is
shared syntax of both libraries.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["Namespace", "is_torch", "namespace"]


def is_torch(x: Any) -> bool:
    """True when ``x`` is a torch tensor (checked without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


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

    def eye(self, n: int) -> Any:
        if self.torch is None:
            return np.eye(n)
        return self.torch.eye(n, dtype=self.torch.float64, device=self.device)

    def zeros(self, shape: tuple[int, ...]) -> Any:
        if self.torch is None:
            return np.zeros(shape)
        return self.torch.zeros(shape, dtype=self.torch.float64, device=self.device)

    def one_hot(self, codes: Any, k: int) -> Any:
        """(n, k) float one-hot matrix of integer codes (used for class sums as one GEMM)."""
        out = self.zeros((codes.shape[0], k))
        if self.torch is None:
            out[np.arange(codes.shape[0]), codes] = 1.0
        else:
            out[self.torch.arange(codes.shape[0], device=self.device), codes] = 1.0
        return out

    def class_sums(self, x: Any, codes: Any, k: int) -> Any:
        """(k, d) per-class row sums of ``x`` (n, d): O(nd) with a sparse one-hot product
        (NumPy) or ``index_add_`` (torch), instead of an O(nkd) dense one-hot GEMM."""
        if self.torch is None:
            from scipy.sparse import csr_matrix

            n = codes.shape[0]
            indicator = csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(k, n))
            return np.asarray(indicator @ x)
        out = self.zeros((k, x.shape[1]))
        return out.index_add_(0, codes, x)

    # -- elementwise / reductions -------------------------------------------------------
    def log(self, x: Any) -> Any:
        return np.log(x) if self.torch is None else self.torch.log(x)

    def exp(self, x: Any) -> Any:
        return np.exp(x) if self.torch is None else self.torch.exp(x)

    def sqrt(self, x: Any) -> Any:
        return np.sqrt(x) if self.torch is None else self.torch.sqrt(x)

    def abs(self, x: Any) -> Any:
        return np.abs(x) if self.torch is None else self.torch.abs(x)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        if self.torch is None:
            return np.where(cond, a, b)
        return self.torch.where(cond, a, self.asarray(b) if not hasattr(b, "shape") else b)

    def maximum(self, x: Any, value: float) -> Any:
        return np.maximum(x, value) if self.torch is None else self.torch.clamp(x, min=value)

    def sum(self, x: Any, axis: int | None = None, keepdims: bool = False) -> Any:
        if self.torch is None:
            return np.sum(x, axis=axis, keepdims=keepdims)
        if axis is None:
            return self.torch.sum(x)
        return self.torch.sum(x, dim=axis, keepdim=keepdims)

    def max(self, x: Any) -> Any:
        return np.max(x) if self.torch is None else self.torch.max(x)

    def min(self, x: Any) -> Any:
        return np.min(x) if self.torch is None else self.torch.min(x)

    def all_finite(self, x: Any) -> bool:
        if self.torch is None:
            return bool(np.isfinite(x).all())
        return bool(self.torch.isfinite(x).all())

    # -- linear algebra ---------------------------------------------------------------
    def eigh(self, a: Any) -> tuple[Any, Any]:
        """Eigenvalues (ascending) and eigenvectors of a symmetric matrix."""
        if self.torch is None:
            return np.linalg.eigh(a)
        return self.torch.linalg.eigh(a)

    def cholesky(self, a: Any) -> Any | None:
        """Lower Cholesky factor, or None when ``a`` is not numerically positive definite."""
        if self.torch is None:
            try:
                return np.linalg.cholesky(a)
            except np.linalg.LinAlgError:
                return None
        factor, info = self.torch.linalg.cholesky_ex(a)
        return None if int(info) != 0 else factor

    def solve_lower(self, lower: Any, b: Any) -> Any:
        """Solve ``lower @ x = b`` for a lower-triangular matrix."""
        if self.torch is None:
            from scipy.linalg import solve_triangular

            return solve_triangular(lower, b, lower=True, check_finite=False)
        return self.torch.linalg.solve_triangular(lower, b, upper=False)

    def logdet_pd(self, a: Any) -> Any:
        """log det of a symmetric positive-definite matrix via Cholesky (batched in torch)."""
        if self.torch is None:
            factor = np.linalg.cholesky(a)
            return 2.0 * np.log(np.diagonal(factor, axis1=-2, axis2=-1)).sum(-1)
        factor = self.torch.linalg.cholesky(a)
        return 2.0 * self.torch.log(self.torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)

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
        if is_torch(x):
            return Namespace(sys.modules["torch"], x.device)
    return _NUMPY
