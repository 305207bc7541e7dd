"""Connected-word DTW ("one-pass" dynamic programming) over a caller's digit templates.

Given the frames of a spoken digit string and a few recorded examples
(templates) of each digit, it finds the sequence of templates whose
concatenation, each warped in time, best explains the whole utterance. No
pauses between the digits are needed: word boundaries fall where the
alignment puts them (Ney 1984, "The use of a one-stage dynamic programming
algorithm for connected word recognition").

Two grammars are searched with the same code:

* *free*: any sequence of digits (what the caller most likely said), and
* *forced*: exactly the asked string, one digit after the other.

The difference of their costs says how much worse the asked string explains
the audio than the best explanation; for the right string it is zero or tiny.

Within a template the path may stay on a template frame (the caller speaks
slower), advance one frame, or skip one (up to twice as fast): the usual
left-to-right constraints of template matching. Costs are sums of Euclidean
frame distances along the path; every utterance frame is matched exactly
once, so dividing by the number of frames gives a per-frame average that is
comparable between utterances.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import numpy as np
from scipy.spatial.distance import cdist

__all__ = ["Alignment", "Word", "align_forced", "decode_free"]

_INF = np.inf


@dataclass(frozen=True)
class Word:
    label: str
    template: int  # index into the template list given
    start: int  # first frame (inclusive)
    end: int  # last frame (exclusive)
    cost: float  # sum of frame distances inside the word


@dataclass(frozen=True)
class Alignment:
    words: tuple[Word, ...]
    cost: float  # total path cost (sum of frame distances, penalties included)
    frames: int

    @property
    def labels(self) -> str:
        return "".join(w.label for w in self.words)

    @property
    def per_frame(self) -> float:
        return self.cost / max(1, self.frames)


@dataclass(frozen=True)
class _Layout:
    """All template frames of all slots, concatenated, with where each template starts and ends."""

    frames: np.ndarray  # (J, D)
    starts: np.ndarray  # (K,) first frame index of template k
    ends: np.ndarray  # (K,) last frame index of template k
    slot_of: np.ndarray  # (K,) slot of template k
    template_of: np.ndarray  # (K,) index into the caller's template list
    labels: list[str]


def _layout(slots: Sequence[Sequence[int]], templates: Sequence[np.ndarray], labels: Sequence[str]) -> _Layout:
    frames, starts, ends, slot_of, template_of = [], [], [], [], []
    pos = 0
    for s, members in enumerate(slots):
        for t in members:
            n = len(templates[t])
            frames.append(templates[t])
            starts.append(pos)
            ends.append(pos + n - 1)
            slot_of.append(s)
            template_of.append(t)
            pos += n
    return _Layout(np.vstack(frames), np.array(starts), np.array(ends), np.array(slot_of),
                   np.array(template_of), list(labels))


def _search(feats: np.ndarray, layout: _Layout, n_slots: int, predecessors: Sequence[Sequence[int]],
            initial: Sequence[int], final: Sequence[int], penalty: float) -> Alignment | None:
    """One time-synchronous pass; ``predecessors[s]``: slots whose words may precede a word of slot ``s``.

    Book-keeping for the back-trace: every time a path enters a template an
    *entry* (start frame, record of the word before, cost so far) is made,
    and each template frame carries only the id of the entry its best path
    came through. When a word ends and another may follow, a *record*
    (template, start, end, previous record, cost of the word) is made.
    """
    T = len(feats)
    dist = cdist(feats, layout.frames)  # (T, J) float64
    J = dist.shape[1]
    starts, ends, slot_of = layout.starts, layout.ends, layout.slot_of
    is_start = np.zeros(J, dtype=bool)
    is_start[starts] = True
    second = starts + 1
    second = second[second <= ends]  # templates of one frame have no second frame
    no_skip = is_start.copy()
    no_skip[second] = True
    members_of = [np.flatnonzero(slot_of == s) for s in range(n_slots)]
    # entries: (start frame, record before it, cost before it); records: (k, start, end, prev record, cost)
    entry_start: list[int] = []
    entry_hist: list[int] = []
    entry_cost: list[float] = []
    records: list[tuple[int, int, int, int, float]] = []

    cost = np.full(J, _INF)
    eid = np.full(J, -1, dtype=np.int64)
    init_slots = np.flatnonzero(np.isin(slot_of, list(initial)))
    if len(init_slots):
        entry_start.append(0)
        entry_hist.append(-1)
        entry_cost.append(0.0)
        cost[starts[init_slots]] = dist[0, starts[init_slots]]
        eid[starts[init_slots]] = 0
    shifted = np.empty(J)
    shifted_id = np.empty(J, dtype=np.int64)
    for t in range(1, T):
        end_cost = cost[ends]
        best_in_slot = [int(m[np.argmin(end_cost[m])]) if len(m) else -1 for m in members_of]
        entry_of_slot = np.full(n_slots, -1, dtype=np.int64)
        entry_val = np.full(n_slots, _INF)
        rec_of_slot: dict[int, int] = {}
        for s in range(n_slots):
            best, best_prev = _INF, -1
            for p in predecessors[s]:
                k = best_in_slot[p]
                if k >= 0 and end_cost[k] < best:
                    best, best_prev = float(end_cost[k]), p
            if best_prev < 0:
                continue
            if best_prev not in rec_of_slot:
                k = best_in_slot[best_prev]
                e = int(eid[ends[k]])
                records.append((k, entry_start[e], t, entry_hist[e], best - entry_cost[e]))
                rec_of_slot[best_prev] = len(records) - 1
            entry_val[s] = best + penalty
            entry_start.append(t)
            entry_hist.append(rec_of_slot[best_prev])
            entry_cost.append(best + penalty)
            entry_of_slot[s] = len(entry_start) - 1
        # Stay on a frame, advance one, or skip one (never across a template's start).
        new = cost.copy()
        ids = eid.copy()
        shifted[0] = _INF
        shifted[1:] = cost[:-1]
        shifted[is_start] = _INF
        shifted_id[1:] = eid[:-1]
        take = shifted < new
        new[take] = shifted[take]
        ids[take] = shifted_id[take]
        shifted[:2] = _INF
        shifted[2:] = cost[:-2]
        shifted[no_skip] = _INF
        shifted_id[2:] = eid[:-2]
        take = shifted < new
        new[take] = shifted[take]
        ids[take] = shifted_id[take]
        # Entering a template's first frame from the end of a preceding word.
        enter = entry_val[slot_of]  # per template
        better = enter < new[starts]
        js = starts[better]
        new[js] = enter[better]
        ids[js] = entry_of_slot[slot_of[better]]
        cost = new + dist[t]
        eid = ids
    final_k = np.flatnonzero(np.isin(slot_of, list(final)))
    if len(final_k) == 0:
        return None
    k = int(final_k[np.argmin(cost[ends[final_k]])])
    total = float(cost[ends[k]])
    if not np.isfinite(total):
        return None
    e = int(eid[ends[k]])
    words = [Word(layout.labels[layout.template_of[k]], int(layout.template_of[k]), entry_start[e], T,
                  total - entry_cost[e])]
    r = entry_hist[e]
    while r >= 0:
        kk, s0, e0, prev, c = records[r]
        words.append(Word(layout.labels[layout.template_of[kk]], int(layout.template_of[kk]), s0, e0, c))
        r = prev
    return Alignment(tuple(reversed(words)), total, T)


def decode_free(feats: np.ndarray, templates: Sequence[np.ndarray], labels: Sequence[str],
                *, word_penalty: float = 0.0) -> Alignment | None:
    """The best sequence of any templates, any length >= 1 (``word_penalty`` added per word boundary)."""
    layout = _layout([range(len(templates))], templates, labels)
    return _search(feats, layout, 1, [[0]], [0], [0], word_penalty)


def align_forced(feats: np.ndarray, templates: Sequence[np.ndarray], labels: Sequence[str],
                 sequence: str, *, word_penalty: float = 0.0) -> Alignment | None:
    """The best alignment of exactly ``sequence`` (one word per character, any template of that label)."""
    slots = [[i for i, lab in enumerate(labels) if lab == ch] for ch in sequence]
    if any(not s for s in slots):
        missing = sorted({ch for ch, s in zip(sequence, slots) if not s})
        raise ValueError(f"no template for {', '.join(missing)}")
    layout = _layout(slots, templates, labels)
    preds: list[list[int]] = [[]] + [[s - 1] for s in range(1, len(slots))]
    return _search(feats, layout, len(slots), preds, [0], [len(slots) - 1], word_penalty)


def decode_length(feats: np.ndarray, templates: Sequence[np.ndarray], labels: Sequence[str], length: int,
                  *, word_penalty: float = 0.0) -> Alignment | None:
    """The best sequence of exactly ``length`` words, each any template."""
    if length < 1:
        raise ValueError(f"length must be at least 1, got {length}")
    slots = [list(range(len(templates)))] * length
    layout = _layout(slots, templates, labels)
    preds: list[list[int]] = [[]] + [[s - 1] for s in range(1, length)]
    return _search(feats, layout, length, preds, [0], [length - 1], word_penalty)
