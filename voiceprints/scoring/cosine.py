"""Cosine similarity between speaker vectors, the raw score of every comparison.

Embedders already return unit vectors, but vectors also arrive from the store,
from cohort files and from averaging, so every entry point here normalises
again rather than trusting its caller: a non-unit vector would silently shift
every score and every threshold calibrated on them.
"""

from __future__ import annotations

import numpy as np

# Norms below this are treated as zero: such a vector has no direction, and
# dividing by it would turn rounding noise into a confident-looking score.
_MIN_NORM = 1e-12


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Unit-norm copy of a vector (1-D) or of each row of a matrix (2-D), as float32.

    Raises ValueError for zero, non-finite or wrongly shaped input, because a
    zero vector (e.g. an embedder fed silence) has no direction to compare.
    """
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.floating) or arr.dtype.itemsize < 4:
        arr = arr.astype(np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(f"expected a vector or a matrix of row vectors, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("vector contains NaN or infinite values")
    # Norms accumulate in float64; the division stays in the input precision so
    # a 100k x 256 float32 matrix is not copied to float64 (200 MB) on the way.
    norms = np.sqrt(np.einsum("...i,...i->...", arr, arr, dtype=np.float64))[..., None]
    if np.any(norms < _MIN_NORM):
        if arr.ndim == 1:
            raise ValueError("cannot normalise a zero vector")
        bad = np.flatnonzero(norms[:, 0] < _MIN_NORM)
        raise ValueError(f"cannot normalise zero vectors (rows {bad[:10].tolist()})")
    return (arr * (1.0 / norms).astype(arr.dtype)).astype(np.float32, copy=False)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors of the same length, in [-1, 1]."""
    va, vb = np.asarray(a), np.asarray(b)
    if va.ndim != 1 or vb.ndim != 1:
        raise ValueError(f"cosine compares two vectors; got shapes {va.shape} and {vb.shape}")
    if va.shape != vb.shape:
        raise ValueError(f"vectors differ in length: {va.shape[0]} vs {vb.shape[0]}")
    ua = l2_normalise(va).astype(np.float64)
    ub = l2_normalise(vb).astype(np.float64)
    # Clip: rounding can push |dot| of unit vectors a hair above 1.
    return float(np.clip(ua @ ub, -1.0, 1.0))


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float32 matrix of cosines, ``out[i, j] = cosine(a[i], b[j])``, as one matrix product."""
    ma, mb = np.asarray(a), np.asarray(b)
    if ma.ndim != 2 or mb.ndim != 2:
        raise ValueError(f"cosine_matrix needs two matrices; got shapes {ma.shape} and {mb.shape}")
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"matrices differ in dimension: {ma.shape[1]} vs {mb.shape[1]}")
    if ma.shape[0] == 0 or mb.shape[0] == 0:
        return np.zeros((ma.shape[0], mb.shape[0]), dtype=np.float32)
    out = l2_normalise(ma) @ l2_normalise(mb).T
    return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)
