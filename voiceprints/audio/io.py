"""Reading audio files and buffers into :class:`AudioClip`, with errors an operator can act on.

What an IVR hands us: WAV (linear PCM or G.711 inside), FLAC, and the raw
headerless files Asterisk's ``Record()`` writes (``.ulaw``, ``.alaw``,
``.sln``). Anything we cannot trust is refused with a typed error that names
the file and the reason, never a libsndfile traceback.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from voiceprints.audio.clip import AudioClip
from voiceprints.audio.g711 import alaw_decode, ulaw_decode
from voiceprints.errors import AudioError, CorruptAudioError, EmptyAudioError, UnsupportedAudioError

__all__ = [
    "AudioFileNotFoundError",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "RAW_FORMATS",
    "read_audio",
    "read_channels",
    "write_wav",
]

# Narrowband telephony is 8 kHz; nothing we do gains from more than 48 kHz,
# and a rate outside this range is far more likely a mislabelled raw file
# than real speech.
MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
# Stereo is averaged (some recorders write the same mono call to both
# channels, others caller and agent side by side); more channels than that is
# a conference or a multitrack recording, and averaging would mix speakers.
_MAX_CHANNELS = 2
# Headerless formats and the sample rate Asterisk implies by the extension.
RAW_FORMATS = ("ulaw", "alaw", "sln")
_RAW_EXTENSIONS: dict[str, tuple[str, int | None]] = {
    ".ulaw": ("ulaw", None),
    ".mulaw": ("ulaw", None),
    ".ul": ("ulaw", None),
    ".pcmu": ("ulaw", None),
    ".alaw": ("alaw", None),
    ".al": ("alaw", None),
    ".pcma": ("alaw", None),
    ".sln": ("sln", 8000),
    ".raw": ("sln", None),
    ".sln12": ("sln", 12000),
    ".sln16": ("sln", 16000),
    ".sln24": ("sln", 24000),
    ".sln32": ("sln", 32000),
    ".sln44": ("sln", 44100),
    ".sln48": ("sln", 48000),
}
_FORMAT_ALIASES = {"mulaw": "ulaw", "mu-law": "ulaw", "pcmu": "ulaw", "pcma": "alaw", "a-law": "alaw",
                   "s16le": "sln", "pcm16": "sln", "slin": "sln"}
_HEADERED_EXTENSIONS = {".wav", ".wave", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".snd", ".caf"}
_DEFAULT_RAW_RATE = 8000
# libsndfile reports a data chunk shorter than its header as "data : N (should be M)".
# Sizes of 0x7FFFFFFF and up are the placeholders streaming writers put in
# before they know the length; those files are not truncated.
_WAV_DATA_SIZE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_SIZE_PLACEHOLDER = 0x7FFFFFFF


class AudioFileNotFoundError(AudioError, FileNotFoundError):
    """The audio file does not exist; also a ``FileNotFoundError`` for callers that catch OS errors."""

    code = "audio_not_found"


@dataclass(frozen=True)
class _Source:
    name: str  # for messages: the path, or "audio data (N bytes)"
    data: bytes
    suffix: str  # lower-case extension, "" for bytes


def read_audio(source: Path | str | bytes, *, format: str | None = None,
               sample_rate: int | None = None) -> AudioClip:
    """Decode ``source`` (a path or the file's bytes) into a mono float clip at its own rate.

    ``format`` is needed only for headerless data the extension does not give
    away: ``"ulaw"``, ``"alaw"`` or ``"sln"`` (signed 16-bit little-endian).
    ``sample_rate`` is the rate of headerless data (default 8000 Hz, what
    telephony records); for WAV/FLAC the header is authoritative, and a
    ``sample_rate`` that contradicts it is an error rather than a silent
    mismatch. Nothing is resampled here: see :func:`voiceprints.audio.resample`.

    Raises :class:`AudioFileNotFoundError`, :class:`CorruptAudioError`,
    :class:`EmptyAudioError` or :class:`UnsupportedAudioError`.
    """
    src = _load(source)
    raw_format, implied_rate = _raw_format(src, format)
    if raw_format is not None:
        rate = sample_rate or implied_rate or _DEFAULT_RAW_RATE
        clip = _decode_raw(src, raw_format, rate)
    else:
        clip = _decode_headered(src, sample_rate)
    if len(clip.samples) == 0:
        raise EmptyAudioError(f"{src.name} contains no audio samples")
    return clip


def write_wav(path: Path | str, clip: AudioClip, *, subtype: str = "PCM_16") -> Path:
    """Write ``clip`` as a WAV file; ``subtype`` "ULAW"/"ALAW" writes G.711 inside WAV.

    16-bit PCM by default: it is what every tool and every telephony platform
    plays, and float WAV would double the size without any audible gain.
    """
    path = Path(path)
    sf.write(str(path), np.asarray(clip.samples, dtype=np.float32), clip.sample_rate,
             subtype=subtype, format="WAV")
    return path


# --- helpers -----------------------------------------------------------------
def _load(source: Path | str | bytes) -> _Source:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return _Source(f"audio data ({len(data)} bytes)", data, "")
    path = Path(source)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioFileNotFoundError(f"audio file not found: {path}") from None
    except IsADirectoryError:
        raise AudioFileNotFoundError(f"{path} is a directory, not an audio file") from None
    except PermissionError:
        raise AudioError(f"no permission to read audio file {path}") from None
    return _Source(str(path), data, path.suffix.lower())


def _raw_format(src: _Source, format: str | None) -> tuple[str | None, int | None]:
    if format is not None:
        fmt = format.lower()
        fmt = _FORMAT_ALIASES.get(fmt, fmt)
        if fmt in RAW_FORMATS:
            return fmt, _RAW_EXTENSIONS.get(src.suffix, (None, None))[1]
        if fmt in ("wav", "flac"):
            return None, None
        raise UnsupportedAudioError(
            f"unknown audio format {format!r} for {src.name}; "
            f"use 'wav' or 'flac' (or any file libsndfile reads), or raw {', '.join(RAW_FORMATS)}"
        )
    if src.suffix in _RAW_EXTENSIONS:
        return _RAW_EXTENSIONS[src.suffix]
    return None, None


def _check_rate(src: _Source, rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise UnsupportedAudioError(
            f"{src.name} has a sample rate of {rate} Hz; "
            f"supported rates are {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz"
        )


def _decode_raw(src: _Source, fmt: str, rate: int) -> AudioClip:
    _check_rate(src, rate)
    if fmt == "ulaw":
        samples = ulaw_decode(src.data)
    elif fmt == "alaw":
        samples = alaw_decode(src.data)
    else:
        if len(src.data) % 2:
            raise CorruptAudioError(
                f"{src.name} is truncated: 16-bit signed-linear audio needs an even number of bytes, "
                f"it has {len(src.data)}"
            )
        return AudioClip.from_pcm16(src.data, rate)
    return AudioClip(samples, rate)


def read_channels(source: Path | str | bytes, *, format: str | None = None,
                  sample_rate: int | None = None) -> list[AudioClip]:
    """Each channel of ``source`` as its own clip: one for mono and headerless audio, two for stereo.

    For call recordings that keep the caller and the agent on separate
    channels: :func:`read_audio` averages them, which would mix two voices
    into one voiceprint. Same arguments and errors as :func:`read_audio`.
    """
    src = _load(source)
    raw_format, implied_rate = _raw_format(src, format)
    if raw_format is not None:
        clips = [_decode_raw(src, raw_format, sample_rate or implied_rate or _DEFAULT_RAW_RATE)]
    else:
        rate, data = _decode_headered_channels(src, sample_rate)
        clips = [AudioClip(np.ascontiguousarray(data[:, i]), rate) for i in range(data.shape[1])]
    if len(clips[0].samples) == 0:
        raise EmptyAudioError(f"{src.name} contains no audio samples")
    return clips


def _decode_headered(src: _Source, expected_rate: int | None) -> AudioClip:
    rate, data = _decode_headered_channels(src, expected_rate)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return AudioClip(mono.astype(np.float32), rate)


def _decode_headered_channels(src: _Source, expected_rate: int | None) -> tuple[int, np.ndarray]:
    if not src.data:
        raise EmptyAudioError(f"{src.name} is empty (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(src.data)) as f:
            rate, channels, extra = f.samplerate, f.channels, f.extra_info
            data = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise _unreadable(src, exc) from None
    _check_truncated(src, extra)
    _check_rate(src, rate)
    if expected_rate is not None and expected_rate != rate:
        raise UnsupportedAudioError(
            f"{src.name} is {rate} Hz according to its header, but {expected_rate} Hz was expected"
        )
    if channels > _MAX_CHANNELS:
        raise UnsupportedAudioError(
            f"{src.name} has {channels} channels; send mono or stereo audio of one caller "
            f"(a multi-channel recording would mix several speakers)"
        )
    return rate, data


def _unreadable(src: _Source, exc: Exception) -> AudioError:
    detail = str(exc).split(":", 1)[-1].strip() if ":" in str(exc) else str(exc)
    looks_like_audio = (
        src.suffix in _HEADERED_EXTENSIONS
        or src.data[:4] in (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM")
        or src.suffix == ""
    )
    if looks_like_audio:
        hint = "; headerless G.711 needs format='ulaw' or 'alaw'" if src.suffix == "" else ""
        return CorruptAudioError(f"{src.name} is corrupt or truncated and cannot be decoded ({detail}){hint}")
    return UnsupportedAudioError(
        f"{src.name} is not in a format we read ({detail}); send WAV or FLAC, or raw G.711 "
        f"as .ulaw/.alaw (or pass format='ulaw'/'alaw')"
    )


def _check_truncated(src: _Source, extra_info: str) -> None:
    match = _WAV_DATA_SIZE.search(extra_info or "")
    if match is None:
        return
    declared, actual = int(match.group(1)), int(match.group(2))
    if actual < declared < _STREAMING_SIZE_PLACEHOLDER:
        raise CorruptAudioError(
            f"{src.name} is truncated: its header promises {declared} bytes of audio "
            f"but only {actual} are present"
        )
