"""Typed errors of the biometric core.

Every error carries a message an operator or a caller-facing flow can act on
("only 1.2 s of speech; need 3.0 s"), and a short machine-readable ``code``
that ends up in logs, audit records and dialplan variables.
"""

from __future__ import annotations


class VoiceprintError(Exception):
    """Base of all errors raised by :mod:`voiceprints`."""

    code = "error"


# --- audio -----------------------------------------------------------------
class AudioError(VoiceprintError):
    """The audio cannot be used; the message says why and what to do."""

    code = "bad_audio"


class CorruptAudioError(AudioError):
    code = "corrupt_audio"


class UnsupportedAudioError(AudioError):
    """Sample rate, channel count or encoding we do not accept."""

    code = "unsupported_audio"


class EmptyAudioError(AudioError):
    code = "empty_audio"


class SilentAudioError(AudioError):
    code = "silent_audio"


class TooLittleSpeechError(AudioError):
    code = "too_little_speech"

    def __init__(self, message: str, *, net_speech_s: float = 0.0, required_s: float = 0.0) -> None:
        super().__init__(message)
        self.net_speech_s = net_speech_s
        self.required_s = required_s


class PoorQualityError(AudioError):
    """Audio contains speech but is too clipped or too noisy to trust."""

    code = "poor_quality"


# --- models ----------------------------------------------------------------
class ModelError(VoiceprintError):
    code = "model_error"


class ModelNotAvailableError(ModelError):
    """Weights missing or unreadable; the message names the directory and the fix."""

    code = "model_unavailable"


class ReenrolmentNeededError(ModelError):
    """A voiceprint exists, but for another ``model_id``: it cannot be scored with this model."""

    code = "reenrolment_needed"


# --- enrolment / store -----------------------------------------------------
class EngineBusyError(ModelError):
    """More inferences running and waiting than the engine's bound: the call steps up instead of waiting."""

    code = "busy"


class EnrolmentError(VoiceprintError):
    code = "enrolment_failed"


class InconsistentEnrolmentError(EnrolmentError):
    """The enrolment utterances do not sound like one speaker."""

    code = "inconsistent_enrolment"


class UnknownSpeakerError(VoiceprintError):
    code = "not_enrolled"


class StoreError(VoiceprintError):
    code = "store_error"


class StoreUnavailableError(StoreError):
    """The database cannot be reached; nothing was written."""

    code = "store_unavailable"


class EncryptionKeyError(StoreError):
    """Encryption key missing or wrong; never shows key material."""

    code = "key_error"


class SharedKeysNotConfiguredError(EncryptionKeyError):
    """A store shared by several hosts, and no explicit key: generating one per host would split the data."""

    code = "keys_not_configured"
