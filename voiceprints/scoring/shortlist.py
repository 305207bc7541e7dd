"""A fast, exact first pass for 1:N search: int8 rows scored in one quarter of the memory traffic.

Why: the top 5 of 1,000,000 voiceprints (256 float32 each) is one pass over
1 GB, and on one core that pass is bound by memory bandwidth (~90-110 ms,
scripts/bench_speed.py). The same rows stored as int8 with one scale per row
are 256 MB; torch's int8 weight-only matrix kernel (``_weight_int8pack_mm``,
the one serving weight-only-quantised language models on CPUs) reads them in
~17 ms on one core.

Exact, not approximate: the first pass only decides which rows get an exact
float32 score. A row is left out only when a bound proves it cannot reach
the top, so the result is the exact top-k (the test suite compares every
query against the full float32 product). For row x and unit query q:

* rows are centred first (y = x - c, c the mean row when the index was built):
  ranking by x.q and y.q is the same, and the centred rows need a smaller
  scale, so the int8 error is about half (GE2E rows are all non-negative);
* y is stored as int8 codes times a bfloat16 scale; r = |y - y_hat| is
  computed when a row is written, and the largest r is kept;
* the kernel multiplies y_hat by the query rounded to bfloat16 (a), adds in
  float32 and rounds the result to bfloat16: out = bf16(y_hat.a);
* so x.q = out + c.q + e with |e| <= r + |y_hat| |q - a| + 2^-8 |out| + slack,
  where the slack (1e-4) covers float32 summation in the kernel and in the
  exact scores (256 terms: < 2e-5).

Search: take the rows with the best ``out``, score them exactly, and let t be
the k-th best of those exact scores. Every row of the true top k scores at
least t, so it has out + c.q + bound >= t: scoring exactly every row that
passes that test and keeping the best k is the exact answer. On GE2E-like
data a few hundred rows pass (bench_speed reports the count).

Cost: one byte per dimension per voiceprint plus two bytes per row (256 MB at
1M x 256), on top of the float32 matrix that exact rescoring and AS-norm need;
building it takes ~0.2 s per 100,000 rows on one core.
"""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Below this many rows a float32 pass is already fast (100,000 rows: ~9 ms on
# one core, README speed table) and the int8 copy is not worth its memory.
QUANTISE_FROM = 50_000
# float32 summation of 256 products in the kernel and in the exact scores is
# off by < 2e-5 (n * 2^-24 with |products| summing to <= 1); 1e-4 leaves room.
SLACK = 1e-4
# bfloat16 keeps 8 significant bits: rounding the kernel's result to it moves
# it by at most 2^-9 of its size; 2^-8 is used to stay on the safe side.
BF16_REL = 2.0**-8
# Rows scored exactly to fix the threshold t; more than k so t is tight.
EXTRA_FIRST = 16
# If the bound admits more than this share of rows (degenerate data: many
# identical voiceprints), a plain float32 pass is cheaper than gathering them.
MAX_SHARE = 0.125
# Rows quantised per step when building: bounds temporary memory (~64 MB).
BUILD_CHUNK = 65_536
_INT8_MAX = 127


def kernel_available(dim: int) -> bool:
    """Whether the int8 kernel exists here and runs vectorised for rows of ``dim``.

    The x86 kernels step through a row 16 (AVX-512) or 8 (AVX2) values at a
    time with no remainder loop and aligned loads, so ``dim`` must be a
    multiple of 16; other CPUs would use a scalar loop slower than float32 BLAS.
    """
    if dim <= 0 or dim % 16:
        return False
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    if not hasattr(torch, "_weight_int8pack_mm"):
        return False
    capability = torch.backends.cpu.get_cpu_capability()
    return capability in ("AVX2", "AVX512") or platform.machine() in ("aarch64", "arm64")


@dataclass
class QuantisedRows:
    """int8 codes and bfloat16 scales of (centred) rows, in step with an index's float32 buffer."""

    codes: Any  # torch.Tensor (capacity, dim) int8
    scales: Any  # torch.Tensor (capacity,) bfloat16
    centre: np.ndarray  # (dim,) float32
    residual: float = 0.0  # largest |y - y_hat| written so far (a bound after removals too)
    norm: float = 0.0  # largest |y_hat| written so far

    @classmethod
    def build(cls, rows: np.ndarray, capacity: int) -> "QuantisedRows | None":
        """Quantise ``rows`` (n, dim) into a buffer of ``capacity`` rows; None where the kernel cannot be used."""
        import torch

        n, dim = rows.shape
        if n == 0 or not kernel_available(dim):
            return None
        centre = rows.mean(axis=0, dtype=np.float64).astype(np.float32)
        made = cls(torch.zeros((capacity, dim), dtype=torch.int8), torch.zeros(capacity, dtype=torch.bfloat16),
                   centre)
        for start in range(0, n, BUILD_CHUNK):
            made.write(start, rows[start:start + BUILD_CHUNK])
        if not made._self_check(rows):
            return None
        return made

    @property
    def capacity(self) -> int:
        return int(self.codes.shape[0])

    def write(self, at: int, rows: np.ndarray) -> None:
        """Quantise ``rows`` into positions ``at``..; the caller owns those rows (no reader looks at them)."""
        import torch

        y = np.asarray(rows, dtype=np.float32).reshape(-1, self.centre.shape[0]) - self.centre
        peak = np.abs(y).max(axis=1)
        # The scale as the kernel will see it (bfloat16), then codes against that very scale.
        scales = torch.from_numpy(np.maximum(peak / _INT8_MAX, np.float32(1e-12))).to(torch.bfloat16)
        scale32 = scales.to(torch.float32).numpy()
        codes = np.clip(np.rint(y / scale32[:, None]), -_INT8_MAX, _INT8_MAX).astype(np.int8)
        restored = codes.astype(np.float32) * scale32[:, None]  # exact: 8-bit x 8-bit significands
        error = y - restored
        # float32 sums of 256 squares are within 256 * 2^-24 (relative) of the truth: 1e-4 covers it.
        residual = float(np.sqrt(np.einsum("ij,ij->i", error, error).max())) * (1 + 1e-4)
        norm = float(np.sqrt(np.einsum("ij,ij->i", restored, restored).max())) * (1 + 1e-4)
        end = at + len(codes)
        self.codes[at:end] = torch.from_numpy(codes)
        self.scales[at:end] = scales
        self.residual = max(self.residual, residual)
        self.norm = max(self.norm, norm)

    def copy(self, capacity: int, n: int) -> "QuantisedRows":
        """The first ``n`` rows in a new buffer of ``capacity`` rows (growth, and copy-on-write)."""
        import torch

        codes = torch.zeros((capacity, self.codes.shape[1]), dtype=torch.int8)
        scales = torch.zeros(capacity, dtype=torch.bfloat16)
        codes[:n] = self.codes[:n]
        scales[:n] = self.scales[:n]
        return QuantisedRows(codes, scales, self.centre, self.residual, self.norm)

    def move(self, source: int, target: int) -> None:
        self.codes[target] = self.codes[source]
        self.scales[target] = self.scales[source]

    def nbytes(self) -> int:
        return int(self.codes.numel() + 2 * self.scales.numel() + self.centre.nbytes)

    # -- search ---------------------------------------------------------------
    def first_pass(self, q: np.ndarray, n: int) -> tuple[np.ndarray, float, float]:
        """For unit query ``q``: out over rows 0..n (float32), c.q, and the error bound's fixed part.

        The exact x.q of row i lies within out_i + c.q +- (2^-8 |out_i| + error).
        """
        import torch

        a = torch.from_numpy(np.ascontiguousarray(q, dtype=np.float32)).to(torch.bfloat16)
        rounding = float(np.linalg.norm(a.to(torch.float64).numpy() - q.astype(np.float64)))
        out = torch._weight_int8pack_mm(a[None, :], self.codes[:n], self.scales[:n])[0]
        offset = float(self.centre.astype(np.float64) @ q.astype(np.float64))
        return out.to(torch.float32).numpy(), offset, self.residual + self.norm * rounding + SLACK

    def top(self, matrix: np.ndarray, q: np.ndarray, want: int) -> tuple[np.ndarray, np.ndarray]:
        """Row indices and exact float32 scores (as float64) of a set holding the ``want`` best rows.

        ``matrix`` is the float32 rows 0..n this object mirrors; ``want`` < n.
        The set may hold more than ``want`` rows; the caller ranks it.
        """
        n = matrix.shape[0]
        import torch

        out, offset, error = self.first_pass(q, n)
        first = min(n, want + EXTRA_FIRST)
        # torch's top-k: ~2 ms over 1M values, where numpy's argpartition takes 7-12 ms.
        seed = torch.topk(torch.from_numpy(out), first, sorted=False).indices.numpy()
        exact_seed = matrix[seed] @ q
        t = float(np.partition(exact_seed, first - want)[first - want])  # the want-th best exact score
        # A row can reach t only if out + 2^-8 |out| + constant >= t: solve for out.
        limit = t - offset - error
        tau = limit / (1 + BF16_REL) if limit >= 0 else limit / (1 - BF16_REL)
        tau32 = np.nextafter(np.float32(tau), np.float32(-np.inf))
        cand = np.flatnonzero(out >= tau32)
        if len(cand) > MAX_SHARE * n:
            log.debug("int8 first pass admitted %d of %d rows; scoring all in float32", len(cand), n)
            cand = np.arange(n)
            return cand, (matrix @ q).astype(np.float64)
        return cand, (matrix[cand] @ q).astype(np.float64)

    def _self_check(self, rows: np.ndarray) -> bool:
        """The kernel's results lie within the bound on a sample: else it is not the kernel described above.

        Guards against a torch version whose kernel rounds differently: the
        index then falls back to exact float32 search instead of being wrong.
        """
        sample = rows[: min(len(rows), 4096)].astype(np.float32)
        rng = np.random.default_rng(0)
        queries = [sample[0], sample[-1], *rng.standard_normal((4, sample.shape[1]))]
        try:
            for query in queries:
                q = (query / np.linalg.norm(query)).astype(np.float32)
                out, offset, error = self.first_pass(q, len(sample))
                miss = np.abs(sample @ q - (out + offset)) - (BF16_REL * np.abs(out) + error)
                if np.any(miss > 0):
                    log.warning("int8 first pass out of its error bound on this torch build; "
                                "1:N search stays on exact float32")
                    return False
        except (RuntimeError, TypeError) as exc:  # an op that changed its signature or refuses the input
            log.warning("int8 first pass unavailable (%s); 1:N search stays on exact float32", exc)
            return False
        return True
