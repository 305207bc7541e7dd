"""G.711, resampling and the simulated telephone line behave like the real network."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from tests.speech import SENTENCES
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.g711 import (
    alaw_decode,
    alaw_decode_pcm16,
    alaw_encode,
    alaw_encode_pcm16,
    ulaw_decode,
    ulaw_decode_pcm16,
    ulaw_encode,
    ulaw_encode_pcm16,
)
from voiceprints.audio.resample import resample
from voiceprints.audio.telephone import telephone_channel

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)
LAWS = {
    "ulaw": (ulaw_encode_pcm16, ulaw_decode_pcm16, ulaw_encode, ulaw_decode),
    "alaw": (alaw_encode_pcm16, alaw_decode_pcm16, alaw_encode, alaw_decode),
}


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.3) -> AudioClip:
    t = np.arange(int(rate * seconds)) / rate
    return AudioClip((amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32), rate)


def level_db(samples: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(samples.astype(np.float64))) + 1e-20))


def dominant_hz(clip: AudioClip) -> float:
    spectrum = np.abs(np.fft.rfft(clip.samples * np.hanning(len(clip.samples))))
    return float(np.fft.rfftfreq(len(clip.samples), 1 / clip.sample_rate)[np.argmax(spectrum)])


# --- G.711 --------------------------------------------------------------------
def test_zero_encodes_to_the_g711_idle_codes() -> None:
    assert ulaw_encode(np.zeros(3, dtype=np.float32)) == b"\xff\xff\xff"
    assert alaw_encode(np.zeros(3, dtype=np.float32)) == b"\xd5\xd5\xd5"


def test_full_scale_encodes_to_the_extreme_codes() -> None:
    extremes = np.array([32767, -32768], dtype=np.int16)
    assert list(ulaw_encode_pcm16(extremes)) == [0x80, 0x00]
    assert list(alaw_encode_pcm16(extremes)) == [0xAA, 0x2A]
    # Beyond full scale in float is clipped, not wrapped around.
    assert ulaw_encode(np.array([1.7, -3.0], dtype=np.float32)) == b"\x80\x00"


def test_known_reference_values_decode_exactly() -> None:
    # G.711 reconstruction levels: the largest magnitudes and the smallest non-zero ones.
    assert list(ulaw_decode_pcm16(np.array([0x80, 0x00, 0xFE, 0xFF, 0x7F], dtype=np.uint8))) == [
        32124, -32124, 8, 0, 0]
    assert list(alaw_decode_pcm16(np.array([0xAA, 0x2A, 0xD5, 0x55], dtype=np.uint8))) == [
        32256, -32256, 8, -8]


def test_every_alaw_code_survives_decode_then_encode() -> None:
    assert np.array_equal(alaw_encode_pcm16(alaw_decode_pcm16(ALL_CODES)), ALL_CODES)


def test_every_ulaw_code_survives_decode_then_encode_except_negative_zero() -> None:
    back = ulaw_encode_pcm16(ulaw_decode_pcm16(ALL_CODES))
    changed = np.flatnonzero(back != ALL_CODES)
    # 0x7F is μ-law's "negative zero": it decodes to 0, which encodes as 0xFF.
    assert list(changed) == [0x7F]
    assert back[0x7F] == 0xFF


@pytest.mark.parametrize("law", LAWS)
def test_codes_are_sign_symmetric_as_in_the_itu_reference(law: str) -> None:
    encode, decode, _, _ = LAWS[law]
    # G.191 treats negative samples by one's complement: x and ~x differ only in the sign bit.
    assert np.all((encode(ALL_INT16) ^ encode(~ALL_INT16)) == 0x80)
    assert np.array_equal(decode(ALL_CODES), -decode(ALL_CODES ^ 0x80).astype(np.int32))


@pytest.mark.parametrize("law", LAWS)
def test_every_sample_is_quantised_to_a_neighbouring_level(law: str) -> None:
    encode, decode, _, _ = LAWS[law]
    levels = np.unique(decode(ALL_CODES).astype(np.int32))
    decoded = decode(encode(ALL_INT16)).astype(np.int32)
    x = ALL_INT16.astype(np.int32)
    inside = np.abs(x) <= levels.max()
    # The chosen level is one of the two levels that bracket the sample...
    idx = np.clip(np.searchsorted(levels, x[inside]), 1, len(levels) - 1)
    lower, upper = levels[idx - 1], levels[idx]
    assert np.all((decoded[inside] == lower) | (decoded[inside] == upper))
    # ...and never further than one quantisation step plus the dropped low bits.
    steps = np.diff(levels)
    assert np.all(np.abs(decoded[inside] - x[inside]) <= steps[idx - 1])
    # Beyond the largest level everything maps to the largest level.
    assert np.all(np.abs(decoded[~inside]) == levels.max())


def test_audioop_agrees_where_it_follows_the_itu_reference() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    pcm = ALL_INT16.tobytes()
    for law in ("ulaw", "alaw"):
        _, decode, _, _ = LAWS[law]
        theirs = np.frombuffer(getattr(audioop, f"{law}2lin")(ALL_CODES.tobytes(), 2), dtype=np.int16)
        assert np.array_equal(decode(ALL_CODES), theirs), law
    a_theirs = np.frombuffer(audioop.lin2alaw(pcm, 2), dtype=np.uint8)
    assert np.array_equal(alaw_encode_pcm16(ALL_INT16), a_theirs)
    u_theirs = np.frombuffer(audioop.lin2ulaw(pcm, 2), dtype=np.uint8)
    u_ours = ulaw_encode_pcm16(ALL_INT16)
    non_negative = ALL_INT16 >= 0
    assert np.array_equal(u_ours[non_negative], u_theirs[non_negative])
    # audioop's μ-law encoder (Sun Microsystems code) uses two's complement for
    # negative samples, so its thresholds sit exactly one 14-bit step (4 in
    # 16-bit) away from G.191's: audioop(x) == ours(x - 4).
    negative = np.flatnonzero((ALL_INT16 < 0) & (ALL_INT16 >= -32764))
    assert np.array_equal(u_theirs[negative], u_ours[negative - 4])
    assert np.count_nonzero(u_theirs[negative] != u_ours[negative]) > 0  # the difference is real


@pytest.mark.parametrize("law", LAWS)
def test_speech_survives_a_codec_round_trip_with_telephone_quality(law: str, say) -> None:
    _, _, encode, decode = LAWS[law]
    speech = say("bob", SENTENCES[2], 8000)
    coded = encode(speech.samples)
    assert isinstance(coded, bytes) and len(coded) == len(speech.samples)
    decoded = decode(coded)
    assert decoded.dtype == np.float32 and decoded.shape == speech.samples.shape
    noise = decoded - speech.samples
    snr = 10 * np.log10(np.sum(np.square(speech.samples, dtype=np.float64))
                        / np.sum(np.square(noise, dtype=np.float64)))
    # G.711 is specified for ~38 dB SQNR on speech at normal level; far below means a broken codec.
    assert 33 < snr < 45


def test_decoding_accepts_any_bytes_like_buffer() -> None:
    codes = bytes([0x80, 0x00, 0xFF])
    assert np.array_equal(ulaw_decode(bytearray(codes)), ulaw_decode(memoryview(codes)))
    assert ulaw_decode(b"").shape == (0,)


# --- resampling ---------------------------------------------------------------
def test_resampling_to_the_same_rate_returns_the_clip_unchanged() -> None:
    clip = tone(440, 16000)
    assert resample(clip, 16000) is clip


@pytest.mark.parametrize(("src", "dst", "freq"), [(16000, 8000, 1000), (8000, 16000, 1000),
                                                   (44100, 16000, 440), (22050, 8000, 700)])
def test_resampling_keeps_a_tone_at_its_frequency_and_level(src: int, dst: int, freq: float) -> None:
    clip = tone(freq, src)
    out = resample(clip, dst)
    assert out.sample_rate == dst
    assert len(out.samples) == pytest.approx(len(clip.samples) * dst / src, abs=1)
    assert dominant_hz(out) == pytest.approx(freq, abs=2)
    assert level_db(out.samples[200:-200]) == pytest.approx(level_db(clip.samples), abs=0.3)


def test_downsampling_removes_content_above_the_new_nyquist_instead_of_aliasing_it() -> None:
    # 6 kHz at 16 kHz would fold to 2 kHz at 8 kHz at full level without an anti-alias filter.
    out = resample(tone(6000, 16000), 8000)
    assert level_db(out.samples[200:-200]) < level_db(tone(6000, 16000).samples) - 50


def test_upsampling_adds_no_images_above_the_old_nyquist() -> None:
    out = resample(tone(1000, 8000), 16000)
    spectrum = np.abs(np.fft.rfft(out.samples))
    freqs = np.fft.rfftfreq(len(out.samples), 1 / 16000)
    assert 20 * np.log10(spectrum[freqs > 4000].max() / spectrum.max()) < -50


def test_resampling_an_empty_clip_or_to_a_bad_rate() -> None:
    assert resample(AudioClip(np.zeros(0), 16000), 8000).samples.shape == (0,)
    with pytest.raises(ValueError, match="positive"):
        resample(tone(440, 16000), 0)


# --- telephone channel --------------------------------------------------------
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_telephone_channel_keeps_the_voice_band_and_removes_the_rest(law: str) -> None:
    def loss_db(freq: float) -> float:
        clip = tone(freq, 16000)
        out = telephone_channel(clip, law)
        return level_db(clip.samples) - level_db(out.samples[800:])  # skip the filter's start-up

    assert loss_db(1000) < 1.0
    assert loss_db(100) > 30  # mains hum and handling rumble
    assert loss_db(5000) > 45  # above the 8 kHz channel's Nyquist


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_telephone_channel_output_is_8khz_g711(law: str, say) -> None:
    speech = say("alice", SENTENCES[0], 16000)
    out = telephone_channel(speech, law)
    assert out.sample_rate == 8000
    assert out.duration_s == pytest.approx(speech.duration_s, abs=0.001)
    _, decode, _, _ = LAWS[law]
    levels = set(decode(ALL_CODES).astype(np.int32).tolist())
    assert set(np.rint(out.samples * 32768).astype(np.int32).tolist()) <= levels
    assert np.array_equal(telephone_channel(speech, law).samples, out.samples)  # deterministic


def test_telephone_channel_rejects_an_unknown_law() -> None:
    with pytest.raises(ValueError, match="ulaw"):
        telephone_channel(tone(1000, 8000), "gsm")  # type: ignore[arg-type]
