"""In-memory 1:N search over all voiceprints of one model ("who is calling?").

One contiguous float32 matrix and one matrix-vector product per query: at
100,000 x 256 that is 100 MB read once, ~9 ms on one core, with no
approximate-search library to build, tune or keep in sync. From
``QUANTISE_FROM`` (50,000) voiceprints an int8 copy of the rows is searched
first and only the rows it cannot rule out are scored in float32
(:mod:`voiceprints.scoring.shortlist`): the result is still the exact top k,
at a quarter of the memory traffic (1,000,000 x 256: ~25 ms instead of ~100).

Memory: 4 * dim bytes per voiceprint in the matrix (1 KiB at dim 256), plus
dim + 2 bytes for the int8 copy from 50,000 voiceprints, plus about 150
bytes for its id in the list and the id-to-row dict; spare capacity for
appends is at most half the matrix again. ``replace`` and ``remove`` briefly
hold a second copy of the matrix (see below).

Thread-safety: mutations take a lock; searches take no lock and read an
immutable snapshot (rows 0..n of a buffer, and the id list). Appends write a
row beyond every published snapshot's n; replace/remove build a new buffer
(copy-on-write) so a search in flight never sees a half-written row. Copying
~100 MB on a rare enrolment change is cheaper than making every verification
wait for a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voiceprints.scoring.asnorm import AsNorm
from voiceprints.scoring.cosine import l2_normalise
from voiceprints.scoring.shortlist import QUANTISE_FROM, QuantisedRows

# Matrix growth factor on append: amortised O(1) appends at <= 50 % spare rows.
_GROWTH = 1.5
_MIN_CAPACITY = 64


@dataclass(frozen=True)
class _Snapshot:
    buffer: np.ndarray  # (capacity, dim) float32; rows [0, n) valid
    ids: list[str]  # shared with later snapshots while only appended to; read [0, n) only
    n: int
    quantised: QuantisedRows | None = None  # int8 copy of the same rows (same capacity), for large indexes

    @property
    def matrix(self) -> np.ndarray:
        return self.buffer[: self.n]


class IdentificationIndex:
    def __init__(self, model_id: str, dim: int, *, quantise_from: int = QUANTISE_FROM) -> None:
        if dim <= 0:
            raise ValueError(f"dim must be positive, got {dim}")
        self.model_id = model_id
        self.dim = dim
        self.quantise_from = quantise_from
        self._lock = threading.Lock()
        self._row_of: dict[str, int] = {}
        self._snap = _Snapshot(np.zeros((0, dim), dtype=np.float32), [], 0)

    @classmethod
    def from_matrix(cls, model_id: str, ids: Sequence[str], matrix: np.ndarray, *,
                    quantise_from: int = QUANTISE_FROM) -> IdentificationIndex:
        """Index over ``store.load_matrix(model_id)``; rows are normalised, ids must be unique."""
        m = np.asarray(matrix)
        if m.ndim != 2:
            raise ValueError(f"matrix must be 2-D (n x dim), got shape {m.shape}")
        ids = list(ids)
        if len(ids) != m.shape[0]:
            raise ValueError(f"{len(ids)} speaker ids for {m.shape[0]} rows")
        index = cls(model_id, m.shape[1], quantise_from=quantise_from)
        row_of = {sid: i for i, sid in enumerate(ids)}
        if len(row_of) != len(ids):
            raise ValueError("speaker ids must be unique")
        buffer = l2_normalise(m) if m.shape[0] else np.zeros((0, m.shape[1]), dtype=np.float32)
        buffer = np.ascontiguousarray(buffer, dtype=np.float32)
        quantised = QuantisedRows.build(buffer, len(buffer)) if len(ids) >= quantise_from else None
        index._row_of = row_of
        index._snap = _Snapshot(buffer, ids, len(ids), quantised)
        return index

    # -- reading ----------------------------------------------------------
    def __len__(self) -> int:
        return self._snap.n

    def __contains__(self, speaker_id: object) -> bool:
        return speaker_id in self._row_of

    @property
    def quantised(self) -> bool:
        """Whether searches start with the int8 first pass (large indexes on CPUs with the kernel)."""
        snap = self._snap
        return snap.quantised is not None and snap.n >= self.quantise_from

    def nbytes(self) -> int:
        """Memory held by the vectors (float32 buffer and int8 copy, spare capacity included)."""
        snap = self._snap
        return int(snap.buffer.nbytes + (snap.quantised.nbytes() if snap.quantised is not None else 0))

    def snapshot(self) -> tuple[list[str], np.ndarray]:
        """(speaker ids, float32 matrix) as of now; the matrix is a read-only view, not a copy."""
        s = self._snap
        view = s.matrix.view()
        view.flags.writeable = False
        return s.ids[: s.n], view

    def cohort(self, top_n: int | None = 200) -> AsNorm:
        """An AS-norm cohort of every indexed voiceprint (sharing memory, no copy), with ids
        so the claimed speaker can be excluded via ``AsNorm.index_of``."""
        ids, matrix = self.snapshot()
        return AsNorm(matrix, top_n=top_n, ids=ids)

    def top_k(
        self, vec: np.ndarray, k: int = 5, *, asnorm: AsNorm | None = None, shortlist: int = 50
    ) -> list[tuple[str, float]]:
        """The ``k`` best-matching speakers, best first, as (speaker_id, score).

        Scores are cosines; with ``asnorm`` the ``max(k, shortlist)`` best by
        cosine are rescored with AS-norm (each excluded from the cohort by id
        when the cohort knows it) and the scores returned are AS-norm scores.
        Rescoring only a shortlist keeps the cost independent of n.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        v = np.asarray(vec)
        if v.ndim != 1 or v.shape[0] != self.dim:
            raise ValueError(f"query must be a vector of length {self.dim}, got shape {v.shape}")
        q = l2_normalise(v)
        snap = self._snap
        if snap.n == 0:
            return []
        want = min(max(k, shortlist) if asnorm is not None else k, snap.n)
        if snap.quantised is not None and snap.n >= self.quantise_from and want < snap.n:
            # Exact top `want` among a set the int8 pass proved holds them (shortlist.py).
            cand, cand_scores = snap.quantised.top(snap.matrix, q, want)
            if len(cand) > want:
                keep = np.argpartition(-cand_scores, want - 1)[:want]
                cand, cand_scores = cand[keep], cand_scores[keep]
        else:
            scores = snap.matrix @ q
            cand = np.argpartition(-scores, want - 1)[:want] if want < snap.n else np.arange(snap.n)
            cand_scores = scores[cand].astype(np.float64)
        if asnorm is not None:
            cand_ids = [snap.ids[i] for i in cand]
            excl = [asnorm.index_of(sid) for sid in cand_ids]
            cand_scores = asnorm.score_many(
                snap.matrix[cand], q, np.array([-1 if e is None else e for e in excl]), raw=cand_scores
            )
        order = np.argsort(-cand_scores, kind="stable")[: min(k, snap.n)]
        return [(snap.ids[cand[i]], float(cand_scores[i])) for i in order]

    # -- mutation ---------------------------------------------------------
    def add(self, speaker_id: str, vec: np.ndarray) -> None:
        """Add a speaker's voiceprint, or replace it if the speaker is already indexed."""
        row = self._check_vec(vec)
        with self._lock:
            if speaker_id in self._row_of:
                self._replace_locked(speaker_id, row)
                return
            s = self._snap
            buffer, quantised = s.buffer, s.quantised
            if s.n == buffer.shape[0]:
                cap = max(_MIN_CAPACITY, int(buffer.shape[0] * _GROWTH) + 1)
                buffer = np.zeros((cap, self.dim), dtype=np.float32)
                buffer[: s.n] = s.matrix
                quantised = quantised.copy(cap, s.n) if quantised is not None else None
            # Row s.n lies beyond every published snapshot's n: no reader looks at it.
            buffer[s.n] = row
            if quantised is not None:
                quantised.write(s.n, row[None, :])
            elif s.n + 1 == self.quantise_from:
                quantised = QuantisedRows.build(buffer[: s.n + 1], buffer.shape[0])
            # The current snapshot's id list has exactly n entries; older snapshots
            # share it but read only their first n, so appending in place is safe.
            s.ids.append(speaker_id)
            self._row_of[speaker_id] = s.n
            self._snap = _Snapshot(buffer, s.ids, s.n + 1, quantised)

    def replace(self, speaker_id: str, vec: np.ndarray) -> None:
        """Replace a speaker's voiceprint (re-enrolment); KeyError if not indexed."""
        row = self._check_vec(vec)
        with self._lock:
            if speaker_id not in self._row_of:
                raise KeyError(f"speaker {speaker_id!r} is not in the identification index")
            self._replace_locked(speaker_id, row)

    def remove(self, speaker_id: str) -> bool:
        """Drop a speaker (erasure, deletion); True if it was indexed."""
        with self._lock:
            i = self._row_of.pop(speaker_id, None)
            if i is None:
                return False
            s = self._snap
            last = s.n - 1
            buffer = s.buffer.copy()  # copy-on-write: see the module docstring
            quantised = s.quantised.copy(s.quantised.capacity, s.n) if s.quantised is not None else None
            ids = s.ids[: s.n]
            if i != last:  # move the last row into the hole; row order means nothing
                buffer[i] = buffer[last]
                if quantised is not None:
                    quantised.move(last, i)
                ids[i] = ids[last]
                self._row_of[ids[i]] = i
            ids.pop()
            self._snap = _Snapshot(buffer, ids, last, quantised)
            return True

    def _replace_locked(self, speaker_id: str, row: np.ndarray) -> None:
        s = self._snap
        at = self._row_of[speaker_id]
        buffer = s.buffer.copy()  # copy-on-write: see the module docstring
        buffer[at] = row
        quantised = s.quantised.copy(s.quantised.capacity, s.n) if s.quantised is not None else None
        if quantised is not None:
            quantised.write(at, row[None, :])
        self._snap = _Snapshot(buffer, s.ids[: s.n], s.n, quantised)

    def _check_vec(self, vec: np.ndarray) -> np.ndarray:
        v = np.asarray(vec)
        if v.ndim != 1 or v.shape[0] != self.dim:
            raise ValueError(
                f"voiceprint for model {self.model_id!r} must have length {self.dim}, got shape {v.shape}"
            )
        return l2_normalise(v)
