"""Synthetic voiceprints shaped like real GE2E ones, for benchmarks that need a large population.

Real GE2E vectors are non-negative (a ReLU before normalisation) and share one
strong common direction: different speakers score ~0.65-0.7 against each
other, so a query's best match has many close competitors. Isotropic random
vectors (cosines ~0 +- 0.06) make 1:N search look easier than it is. Given
real embeddings, the population is drawn from a Gaussian fitted to them
(mean and covariance, shrunk towards the diagonal), clipped at zero and
normalised; without them, from a fixed parametric shape with the same traits.
"""

from __future__ import annotations

import numpy as np

# Rows generated per step: bounds temporary memory at 1M x 256.
CHUNK = 100_000


def voiceprint_population(n: int, dim: int = 256, *, real: np.ndarray | None = None,
                          seed: int = 0) -> np.ndarray:
    """(n, dim) float32 unit rows, non-negative, with GE2E-like mutual cosines."""
    rng = np.random.default_rng(seed)
    if real is not None and len(real) >= 8:
        data = np.asarray(real, dtype=np.float64)
        mean = data.mean(axis=0)
        cov = np.cov(data.T)
        # Shrinkage: a few hundred embeddings do not determine a 256 x 256 covariance.
        cov = 0.9 * cov + 0.1 * np.diag(np.diag(cov)) + 1e-4 * np.eye(dim)
        factor = np.linalg.cholesky(cov)
    else:
        mean = np.abs(rng.standard_normal(dim)) * 1.2
        factor = None
        basis = rng.standard_normal((24, dim)) * 0.5
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        if factor is not None:
            rows = mean + rng.standard_normal((size, dim)) @ factor.T
        else:
            rows = mean + rng.standard_normal((size, 24)) @ basis + 0.45 * rng.standard_normal((size, dim))
        rows = np.maximum(rows, 0.0)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        out[start:start + size] = rows / np.where(norms > 0, norms, 1.0)
    return out


def caller_of(vector: np.ndarray, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """Another call of the speaker behind ``vector`` (a GE2E-like same-speaker cosine of ~0.9)."""
    row = np.maximum(vector + noise * rng.standard_normal(vector.shape[0]), 0.0).astype(np.float32)
    return row / np.linalg.norm(row)
