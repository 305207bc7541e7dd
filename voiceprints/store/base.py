"""The voiceprint-store seam: what the engine needs from persistence.

Vectors cross this boundary in plaintext (numpy) and are encrypted inside the
store; nothing outside ``voiceprints.store`` ever sees ciphertext or keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol, Sequence

import numpy as np

from voiceprints.clock import Clock


@dataclass(frozen=True)
class EnrolmentMeta:
    utterance_count: int
    net_speech_s: float
    quality: dict[str, object] = field(default_factory=dict)  # summary, e.g. mean SNR, consistency


@dataclass(frozen=True)
class Voiceprint:
    speaker_id: str
    model_id: str
    vector: np.ndarray  # float32 (dim,), unit norm
    meta: EnrolmentMeta
    key_id: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class VoiceprintSummary:
    """What listing shows: never the vector."""

    speaker_id: str
    model_id: str
    utterance_count: int
    net_speech_s: float
    key_id: str
    created_at: dt.datetime
    updated_at: dt.datetime


# How long the store remembers an enrolment or erasure for other processes' caches: a process
# that has not looked for longer must assume it missed some (models.VoiceprintChange).
CHANGE_MEMORY_S = 600


@dataclass(frozen=True)
class StoreChanges:
    """What changed in the store after a caller's mark (see ``VoiceprintStore.changes_since``)."""

    mark: int
    erased: frozenset[str]
    enrolled: frozenset[str]


@dataclass(frozen=True)
class Calibration:
    """Thresholds for one model_id and one normalisation, with where they were measured."""

    model_id: str
    normalisation: str  # one of voiceprints.scoring.normalise.METHODS
    accept_threshold: float  # score >= this: accept (set for target_far)
    reject_threshold: float  # score < this: reject (set for target_frr); between: inconclusive
    target_far: float
    target_frr: float
    n_target: int
    n_nontarget: int
    source: str  # what it was measured on: manifest path / "shipped default: ..."
    created_at: dt.datetime | None = None


class VoiceprintStore(Protocol):
    clock: Clock
    """The wall clock of the store and of what is built on it (voiceprints.clock)."""

    def save_voiceprint(self, speaker_id: str, model_id: str, vector: np.ndarray, meta: EnrolmentMeta,
                        utterances: np.ndarray | None = None) -> Voiceprint:
        """Create or replace, atomically: either the whole record is there afterwards or nothing changed.

        ``utterances``: the embeddings of the enrolment utterances (k x dim), kept
        encrypted with the voiceprint and replaced with it.
        """
        ...

    def get_voiceprint(self, speaker_id: str, model_id: str) -> Voiceprint | None: ...

    def model_ids_for(self, speaker_id: str) -> list[str]:
        """Models this speaker has voiceprints for (to tell "not enrolled" from "re-enrolment needed")."""
        ...

    def list_voiceprints(self, model_id: str | None = None) -> list[VoiceprintSummary]: ...

    def load_matrix(self, model_id: str) -> tuple[list[str], np.ndarray]:
        """All voiceprints of one model as (speaker_ids, float32 matrix n x dim), for identification and cohorts."""
        ...

    def load_utterances(self, model_id: str, speakers: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
        """Enrolment-utterance embeddings of one model (of ``speakers`` only, when given) as
        (speaker id per row, float32 matrix)."""
        ...

    def delete_speaker(self, speaker_id: str) -> bool:
        """Erase every voiceprint and all data of the speaker (right to erasure). True if anything existed."""
        ...

    def changes_since(self, mark: int) -> "StoreChanges":
        """Voiceprints enrolled or erased (by any process) after ``mark``: caches drop erased ones at once
        and rebuild in the background after enrolments."""
        ...

    def export_speaker(self, speaker_id: str) -> dict[str, object]:
        """All data held about a speaker, JSON-serialisable (data-subject access request)."""
        ...

    def save_calibration(self, calibration: Calibration) -> None: ...

    def get_calibration(self, model_id: str, normalisation: str) -> Calibration | None: ...

    def rotate_keys(self) -> int:
        """Re-encrypt every record with the current primary key; returns how many were re-encrypted."""
        ...

    def speakers(self) -> Sequence[str]: ...
