"""Audio in the core: reading files, G.711, resampling, the telephone channel, speech detection, quality."""

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voiceprints.audio.io import AudioFileNotFoundError, read_audio, write_wav
from voiceprints.audio.quality import (
    QualityProblem,
    QualityReport,
    assess,
    ensure_not_empty,
    require_usable,
)
from voiceprints.audio.resample import resample
from voiceprints.audio.telephone import TELEPHONE_RATE, telephone_channel
from voiceprints.audio.vad import FrameAnalysis, SpeechDetector, StreamingSpeechCounter

__all__ = [
    "TELEPHONE_RATE",
    "AudioClip",
    "AudioFileNotFoundError",
    "FrameAnalysis",
    "QualityProblem",
    "QualityReport",
    "SpeechDetector",
    "StreamingSpeechCounter",
    "alaw_decode",
    "alaw_encode",
    "assess",
    "ensure_not_empty",
    "read_audio",
    "require_usable",
    "resample",
    "telephone_channel",
    "ulaw_decode",
    "ulaw_encode",
    "write_wav",
]
