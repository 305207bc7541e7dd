"""Adaptive symmetric score normalisation (AS-norm).

Raw cosines are not comparable across speakers: some voiceprints ("hubs") sit
close to the population mean and score high against everybody, others score
low against everybody. One global threshold then false-accepts impostors of
hubs and false-rejects genuine callers of the others. AS-norm measures how a
vector scores against a cohort of other speakers and expresses the trial score
in those units, on the enrolment side and the test side, and averages:

    s_norm = 0.5 * ((s - mu_e) / sigma_e + (s - mu_t) / sigma_t)

"Adaptive" means the statistics use only the top-N cohort scores of each
side (Matejka et al., Interspeech 2017; WeSpeaker ``score_norm.py``), i.e. the
cohort speakers that are actually confusable with this vector.

The engine uses the other enrolled speakers as the cohort. To reuse one cohort
matrix (all enrolled speakers) without copying, every call takes the row of
the claimed speaker to leave out: a speaker scored against its own voiceprint
would put a 1.0 into its own statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from voiceprints.scoring.cosine import l2_normalise

# A top-N set whose scores are (nearly) all equal has no spread to divide by;
# this floor keeps the result finite instead of raising on a degenerate cohort.
_MIN_STD = 1e-6
# Rows whose norm is this close to 1 are used as they are (no float64 copy of
# a possibly 100 MB cohort); float32 rounding of a unit vector is ~1e-7.
_UNIT_TOLERANCE = 1e-3


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """The matrix itself when it already holds float32 unit rows, else a normalised copy."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape[1] == 0:
        raise ValueError(f"cohort must be a matrix (n speakers x dim), got shape {m.shape}")
    if m.dtype == np.float32 and m.flags.c_contiguous:
        norms = np.sqrt(np.einsum("ij,ij->i", m, m))
        if np.all(np.isfinite(norms)) and np.all(np.abs(norms - 1.0) < _UNIT_TOLERANCE):
            return m
    return l2_normalise(m)


def _unit_vector(vec: np.ndarray, dim: int, what: str) -> np.ndarray:
    v = np.asarray(vec)
    if v.ndim != 1 or v.shape[0] != dim:
        raise ValueError(f"{what} must be a vector of length {dim}, got shape {v.shape}")
    return l2_normalise(v)


class AsNorm:
    """Score normaliser over a fixed cohort matrix.

    ``top_n=None`` uses the whole cohort (plain symmetric S-norm). When the
    cohort, minus the excluded speaker, has fewer than ``top_n`` rows, all of
    them are used. ``ids`` (optional, one per cohort row) lets callers find
    the row to exclude by speaker id.
    """

    def __init__(self, cohort: np.ndarray, top_n: int | None = 200, ids: Sequence[str] | None = None) -> None:
        if top_n is not None and top_n < 2:
            # A standard deviation needs at least two scores.
            raise ValueError(f"top_n must be at least 2 (or None for the whole cohort), got {top_n}")
        self._cohort = _unit_rows(cohort)
        if self._cohort.shape[0] < 3:
            # After excluding the claimed speaker at least two scores must remain.
            raise ValueError(f"cohort has {self._cohort.shape[0]} speakers; AS-norm needs at least 3")
        self._top_n = top_n
        self._ids: tuple[str, ...] | None = None
        self._row_of: dict[str, int] = {}
        if ids is not None:
            self._ids = tuple(ids)
            if len(self._ids) != self._cohort.shape[0]:
                raise ValueError(f"{len(self._ids)} ids for a cohort of {self._cohort.shape[0]} rows")
            self._row_of = {sid: i for i, sid in enumerate(self._ids)}
            if len(self._row_of) != len(self._ids):
                raise ValueError("cohort ids must be unique")

    # -- introspection ----------------------------------------------------
    @property
    def size(self) -> int:
        return int(self._cohort.shape[0])

    @property
    def dim(self) -> int:
        return int(self._cohort.shape[1])

    @property
    def top_n(self) -> int | None:
        return self._top_n

    @property
    def adaptive(self) -> bool:
        return self._top_n is not None

    def index_of(self, speaker_id: str) -> int | None:
        """Cohort row of ``speaker_id`` (to pass as ``exclude_index``), or None when absent or ids unknown."""
        return self._row_of.get(speaker_id)

    # -- statistics -------------------------------------------------------
    def _check_exclude(self, exclude_index: int | None) -> None:
        if exclude_index is not None and not 0 <= exclude_index < self.size:
            raise IndexError(f"exclude_index {exclude_index} outside cohort of {self.size}")

    def _n_used(self, n_available: int) -> int:
        return n_available if self._top_n is None else min(self._top_n, n_available)

    def _stats_rows(self, scores: np.ndarray, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std of the top-N of each row of ``scores`` (m x n), leaving out column exclude[i] (>= 0).

        Overwrites ``scores`` (callers pass a fresh product): copying or
        widening m x n cohort scores would cost more than the selection itself.
        """
        n = scores.shape[1]
        work = scores
        rows = np.flatnonzero(exclude >= 0)
        work[rows, exclude[rows]] = -np.inf
        # Take the top k for a row without exclusion. For a row with one, either
        # k < n and the -inf is not among the top k (top-N of the other n-1), or
        # k == n (whole cohort) and masking the -inf leaves the other n-1.
        k = self._n_used(n)
        top = np.partition(work, n - k, axis=1)[:, n - k :] if k < n else work
        top = top.astype(np.float64)  # only the top N are summed: accumulate them in double
        finite = np.isfinite(top)
        cnt = finite.sum(axis=1)
        mean = np.where(finite, top, 0.0).sum(axis=1) / cnt
        sq = np.where(finite, (top - mean[:, None]) ** 2, 0.0).sum(axis=1)
        std = np.sqrt(sq / cnt)  # population std (ddof=0), as np.std in WeSpeaker's score_norm.py
        return mean, np.maximum(std, _MIN_STD)

    def cohort_scores(self, vec: np.ndarray) -> np.ndarray:
        """Cosines of ``vec`` against every cohort row (float32, length ``size``)."""
        return self._cohort @ _unit_vector(vec, self.dim, "vector")

    def enrol_stats(self, enrol_vec: np.ndarray, exclude_index: int | None = None) -> tuple[float, float]:
        """(mean, std) of the top-N cohort scores of a voiceprint; cache it per voiceprint and cohort."""
        self._check_exclude(exclude_index)
        scores = self.cohort_scores(enrol_vec)[None, :]
        mean, std = self._stats_rows(scores, np.array([-1 if exclude_index is None else exclude_index]))
        return float(mean[0]), float(std[0])

    # The test side uses exactly the same statistics; the name says which side a caller means.
    test_stats = enrol_stats

    # -- scoring ----------------------------------------------------------
    def score(
        self,
        enrol_vec: np.ndarray,
        test_vec: np.ndarray,
        raw: float | None = None,
        *,
        exclude_index: int | None = None,
        enrol_stats: tuple[float, float] | None = None,
    ) -> float:
        """AS-norm score of one trial.

        ``raw``: the plain cosine if the caller already has it. ``exclude_index``:
        cohort row of the claimed speaker, left out on both sides (on the test
        side a genuine caller would otherwise raise its own statistics with its
        high score against its own voiceprint). ``enrol_stats``: cached result
        of :meth:`enrol_stats` for the same exclusion.
        """
        e = _unit_vector(enrol_vec, self.dim, "enrolment vector")
        t = _unit_vector(test_vec, self.dim, "test vector")
        s = float(np.clip(e.astype(np.float64) @ t, -1.0, 1.0)) if raw is None else float(raw)
        if not np.isfinite(s):
            raise ValueError(f"raw score must be finite, got {raw}")
        mu_e, sd_e = self.enrol_stats(e, exclude_index) if enrol_stats is None else enrol_stats
        mu_t, sd_t = self.test_stats(t, exclude_index)
        return 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)

    def score_many(
        self,
        enrol_matrix: np.ndarray,
        test_vec: np.ndarray,
        exclude_indices: Sequence[int] | np.ndarray | None = None,
        raw: np.ndarray | None = None,
    ) -> np.ndarray:
        """AS-norm scores of one test vector against each row of ``enrol_matrix`` (identification).

        ``exclude_indices[i]`` is the cohort row of candidate i (or -1 when the
        candidate is not in the cohort); the test-side statistics then differ per
        candidate too, and are derived from one sorted top-(N+1) list.
        """
        e = _unit_rows(enrol_matrix)
        if e.shape[1] != self.dim:
            raise ValueError(f"enrolment matrix has dimension {e.shape[1]}, cohort has {self.dim}")
        t = _unit_vector(test_vec, self.dim, "test vector")
        m = e.shape[0]
        excl = np.full(m, -1, dtype=np.int64)
        if exclude_indices is not None:
            excl = np.asarray(exclude_indices, dtype=np.int64)
        if excl.shape != (m,):
            raise ValueError(f"need one exclude index per candidate ({m}), got shape {excl.shape}")
        if np.any(excl >= self.size) or np.any(excl < -1):
            raise IndexError(f"exclude indices must be -1 or in [0, {self.size})")
        if m == 0:
            return np.zeros(0, dtype=np.float64)
        s = (e @ t).astype(np.float64) if raw is None else np.asarray(raw, dtype=np.float64)
        if s.shape != (m,):
            raise ValueError(f"need one raw score per candidate ({m}), got shape {s.shape}")

        mu_e, sd_e = self._stats_rows(e @ self._cohort.T, excl)

        # Test side: the statistics depend only on which row is excluded, and
        # only if that row is among the test vector's top N+1; both kinds come
        # from that one list, so the cohort is scored once, not once per candidate.
        tc = self.cohort_scores(t).astype(np.float64)
        n = tc.shape[0]
        k_full, k_excl = self._n_used(n), self._n_used(n - 1)
        ext_idx = np.argpartition(-tc, k_excl)[: k_excl + 1] if k_excl + 1 < n else np.arange(n)
        ext = tc[ext_idx]
        # Without exclusion: the top k_full, i.e. ext minus its smallest when top_n < n.
        full = ext if k_full == ext.shape[0] else np.sort(ext)[1:]
        mu_t = np.full(m, full.mean())
        sd_t = np.full(m, full.std())
        # Excluding a row outside ext leaves the top-N as it is; excluding one
        # inside it leaves the other k_excl rows of ext.
        inside = np.isin(excl, ext_idx)
        if np.any(inside):
            x = tc[excl[inside]]
            s1, s2 = ext.sum(), (ext**2).sum()
            mean = (s1 - x) / k_excl
            var = (s2 - x**2) / k_excl - mean**2
            mu_t[inside], sd_t[inside] = mean, np.sqrt(np.maximum(var, 0.0))
        sd_t = np.maximum(sd_t, _MIN_STD)
        return 0.5 * ((s - mu_e) / sd_e + (s - mu_t) / sd_t)
