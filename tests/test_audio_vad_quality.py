"""Speech detection counts what a caller actually said; quality checks say what is wrong with a recording."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.speech import SENTENCES
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.quality import QualityProblem, assess, ensure_not_empty, require_usable
from voiceprints.audio.resample import resample
from voiceprints.audio.telephone import telephone_channel
from voiceprints.audio.vad import NOISE_WINDOW_S, SpeechDetector, StreamingSpeechCounter
from voiceprints.config import QualityConfig
from voiceprints.errors import (
    EmptyAudioError,
    PoorQualityError,
    SilentAudioError,
    TooLittleSpeechError,
    UnsupportedAudioError,
)

PAD_S = 0.3  # tests.speech pads every utterance with this much faint noise on both sides
CONFIG = QualityConfig()


def scaled(clip: AudioClip, gain_db: float) -> AudioClip:
    return AudioClip(clip.samples * np.float32(10 ** (gain_db / 20)), clip.sample_rate)


def with_noise(clip: AudioClip, noise_dbfs: float, seed: int = 5) -> AudioClip:
    noise = np.random.default_rng(seed).standard_normal(len(clip.samples)) * 10 ** (noise_dbfs / 20)
    return AudioClip(clip.samples + noise.astype(np.float32), clip.sample_rate)


def signal(kind: str, rate: int, seconds: float = 5.0) -> AudioClip:
    t = np.arange(int(rate * seconds)) / rate
    if kind == "silence":
        x = np.zeros_like(t)
    elif kind == "white noise":
        x = np.random.default_rng(11).standard_normal(len(t)) * 0.1  # -20 dBFS: a very loud hiss
    elif kind == "50 Hz hum":
        # mains hum with its odd harmonics, as a badly earthed line carries it
        x = sum(a * np.sin(2 * np.pi * f * t) for a, f in ((0.2, 50), (0.1, 150), (0.05, 250)))
    else:
        raise ValueError(kind)
    return AudioClip(x.astype(np.float32), rate)


@pytest.fixture(scope="module")
def speech(say) -> dict[str, AudioClip]:
    return {name: say(name, SENTENCES[i], 16000) for i, name in enumerate(("alice", "bob", "dave"))}


# --- batch detector -----------------------------------------------------------
@pytest.mark.parametrize("name", ["alice", "bob", "dave"])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_net_speech_is_close_to_the_spoken_duration(say, name: str, rate: int) -> None:
    clip = say(name, SENTENCES[0], rate)
    spoken_s = clip.duration_s - 2 * PAD_S
    net = SpeechDetector().net_speech_seconds(clip)
    # Word gaps and the quietest consonant tails are not speech; most of the rest is.
    assert 0.8 * spoken_s < net <= spoken_s


def test_the_padding_around_an_utterance_is_not_speech(speech: dict[str, AudioClip]) -> None:
    detector = SpeechDetector()
    mask = detector.speech_mask(speech["alice"])
    pad_frames = int(PAD_S / detector.frame_s)
    assert mask.dtype == bool
    assert len(mask) == int(speech["alice"].duration_s / detector.frame_s)
    assert not mask[:pad_frames].any() and not mask[-pad_frames:].any()
    assert mask[pad_frames:-pad_frames].mean() > 0.8


@pytest.mark.parametrize("kind", ["silence", "white noise", "50 Hz hum"])
@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_silence_noise_and_hum_are_not_speech(kind: str, rate: int) -> None:
    assert SpeechDetector().net_speech_seconds(signal(kind, rate)) <= 0.06


@pytest.mark.parametrize("rate", [8000, 16000])
def test_noise_that_switches_on_is_speech_only_until_the_floor_catches_up(rate: int) -> None:
    quiet_then_loud = signal("white noise", rate, 10.0).samples.copy()
    quiet_then_loud[: 2 * rate] *= 0.01  # -60 dBFS for 2 s, then -20 dBFS for 8 s
    net = SpeechDetector().net_speech_seconds(AudioClip(quiet_then_loud, rate))
    assert net <= NOISE_WINDOW_S + 0.1  # a whole-clip noise estimate would count all 8 s


def test_other_sample_rates_give_the_same_answer(speech: dict[str, AudioClip]) -> None:
    detector = SpeechDetector()
    reference = detector.net_speech_seconds(speech["bob"])
    for rate in (11025, 22050, 44100, 48000):
        net = detector.net_speech_seconds(resample(speech["bob"], rate))
        assert net == pytest.approx(reference, abs=0.15)


def test_speech_is_still_found_in_moderate_noise(speech: dict[str, AudioClip]) -> None:
    detector = SpeechDetector()
    clean = detector.net_speech_seconds(speech["alice"])
    noisy = detector.net_speech_seconds(with_noise(speech["alice"], -40))  # ~20 dB SNR
    assert 0.75 * clean < noisy <= clean + 0.1


def test_speech_only_drops_the_pauses_but_keeps_word_edges(speech: dict[str, AudioClip]) -> None:
    detector = SpeechDetector()
    clip = speech["dave"]
    only = detector.speech_only(clip)
    net = detector.net_speech_seconds(clip)
    assert only.sample_rate == clip.sample_rate
    assert net < only.duration_s < clip.duration_s - 2 * PAD_S + 0.2
    # Nothing but speech and its edges is left: run again, nearly all of it is speech.
    assert detector.net_speech_seconds(only) > 0.85 * only.duration_s
    without_edges = SpeechDetector(edge_ms=0).speech_only(clip)
    assert without_edges.duration_s == pytest.approx(net, abs=0.01)


def test_speech_only_of_silence_is_empty() -> None:
    out = SpeechDetector().speech_only(signal("silence", 8000))
    assert out.samples.shape == (0,) and out.sample_rate == 8000


def test_a_clip_shorter_than_one_frame_has_no_speech() -> None:
    assert SpeechDetector().net_speech_seconds(AudioClip(np.ones(100, dtype=np.float32) * 0.5, 8000)) == 0.0


def test_detector_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="aggressiveness"):
        SpeechDetector(aggressiveness=4)
    with pytest.raises(ValueError, match="10, 20 or 30 ms"):
        SpeechDetector(frame_ms=25)


# --- streaming counter --------------------------------------------------------
def stream(clip: AudioClip, chunk_bytes: int) -> StreamingSpeechCounter:
    counter = StreamingSpeechCounter(clip.sample_rate)
    pcm = clip.to_pcm16()
    for i in range(0, len(pcm), chunk_bytes):
        counter.push(pcm[i:i + chunk_bytes])
    return counter


@pytest.mark.parametrize("name", ["alice", "bob", "dave"])
def test_streaming_20ms_chunks_count_the_same_speech_as_the_batch_detector(say, name: str) -> None:
    clip = say(name, SENTENCES[1], 8000)
    counter = stream(clip, 320)  # 20 ms of 8 kHz signed-linear: what Asterisk AudioSocket sends
    batch = SpeechDetector().net_speech_seconds(AudioClip.from_pcm16(clip.to_pcm16(), 8000))
    # Same causal noise floor, same webrtcvad state: the same frames, not merely a similar total.
    assert counter.net_speech_s == pytest.approx(batch, abs=1e-9)
    assert counter.net_speech_s > 1.0


def test_chunk_size_does_not_matter(speech: dict[str, AudioClip]) -> None:
    clip = resample(speech["bob"], 8000)
    reference = stream(clip, 320)
    for size in (1, 7, 333, 4096):
        counter = stream(clip, size)
        assert counter.net_speech_s == reference.net_speech_s
        assert counter.trailing_silence_s == reference.trailing_silence_s


def test_the_counter_keeps_all_audio_pushed(speech: dict[str, AudioClip]) -> None:
    clip = resample(speech["alice"], 16000)
    counter = StreamingSpeechCounter(16000)
    pcm = clip.to_pcm16()
    counter.push(pcm[:1001])  # a split sample across chunks
    counter.push(pcm[1001:])
    assert counter.audio().sample_rate == 16000
    assert counter.audio().to_pcm16() == pcm
    assert counter.total_s == pytest.approx(clip.duration_s)


def test_trailing_silence_tells_the_call_flow_the_caller_stopped(speech: dict[str, AudioClip]) -> None:
    talk = resample(speech["dave"], 8000).to_pcm16()
    hiss = np.random.default_rng(3).standard_normal(8000 * 2).astype(np.float32) * 1e-3  # 2 s of a quiet line
    quiet = AudioClip(hiss, 8000).to_pcm16()
    counter = StreamingSpeechCounter(8000)
    counter.push(quiet)
    assert counter.net_speech_s == 0.0
    assert counter.trailing_silence_s == pytest.approx(2.0, abs=0.03)  # nobody has spoken yet
    counter.push(talk)
    said = counter.net_speech_s
    assert said > 1.0
    after_talk = counter.trailing_silence_s
    assert after_talk < PAD_S + 0.4  # only the utterance's own padding and its last word's tail
    counter.push(quiet)
    assert counter.net_speech_s == said
    assert counter.trailing_silence_s == pytest.approx(after_talk + 2.0, abs=0.031)
    assert counter.total_s == pytest.approx(4.0 + len(talk) / 2 / 8000)


def test_noise_on_a_live_line_does_not_count_as_speech() -> None:
    counter = StreamingSpeechCounter(8000)
    for kind in ("white noise", "50 Hz hum"):
        pcm = signal(kind, 8000, 3.0).to_pcm16()
        for i in range(0, len(pcm), 320):
            counter.push(pcm[i:i + 320])
    assert counter.net_speech_s <= 0.06
    assert counter.trailing_silence_s >= 5.9


def test_the_counter_only_takes_telephony_rates() -> None:
    with pytest.raises(UnsupportedAudioError, match="44100 Hz"):
        StreamingSpeechCounter(44100)


# --- quality ------------------------------------------------------------------
def test_clean_speech_is_usable(speech: dict[str, AudioClip]) -> None:
    report = assess(speech["alice"], CONFIG, min_speech_s=3.0)
    assert report.ok, report.reasons
    assert report.net_speech_s > 3.0
    assert report.snr_db is not None and report.snr_db > 30
    assert -30 < report.speech_level_dbfs < -10
    assert report.clipping_ratio == 0.0
    require_usable(report, min_speech_s=3.0)  # does not raise
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_speech_through_the_telephone_channel_is_still_usable(speech: dict[str, AudioClip], law: str) -> None:
    for clip in speech.values():
        report = assess(telephone_channel(clip, law), CONFIG, min_speech_s=3.0)
        assert report.ok, report.reasons


@pytest.mark.parametrize("telephone", [False, True])
def test_overdriven_speech_is_clipped(speech: dict[str, AudioClip], telephone: bool) -> None:
    loud = AudioClip(np.clip(speech["alice"].samples * 20, -1, 1), 16000)
    if telephone:
        loud = telephone_channel(loud)  # G.711 rails sit at 0.98, not 1.0
    report = assess(loud, CONFIG)
    assert QualityProblem.CLIPPED in report.problems
    assert report.clipping_ratio > 0.05
    reason = report.reasons[report.problems.index(QualityProblem.CLIPPED)]
    match = re.fullmatch(r"([\d.]+) % of speech samples clipped in \d+ places \(limit 1 %\)", reason)
    shown = float(match.group(1))
    assert shown == pytest.approx(report.clipping_ratio * 100, abs=0.5)
    with pytest.raises(PoorQualityError, match="clipped"):
        require_usable(report)


def test_a_tolerant_clipping_limit_accepts_the_same_audio(speech: dict[str, AudioClip]) -> None:
    loud = AudioClip(np.clip(speech["alice"].samples * 20, -1, 1), 16000)
    assert QualityProblem.CLIPPED not in assess(loud, QualityConfig(max_clipping_ratio=0.9)).problems


def test_speech_in_loud_noise_is_too_noisy(speech: dict[str, AudioClip]) -> None:
    report = assess(with_noise(speech["bob"], -22), CONFIG)
    assert report.problems == (QualityProblem.TOO_NOISY,)
    assert report.snr_db is not None and report.snr_db < 10
    assert report.reasons == (f"SNR {report.snr_db:.1f} dB (need 10 dB)",)
    with pytest.raises(PoorQualityError, match=r"SNR [\d.]+ dB \(need 10 dB\)"):
        require_usable(report)


def test_the_snr_limit_comes_from_the_configuration(speech: dict[str, AudioClip]) -> None:
    report = assess(speech["bob"], QualityConfig(min_snr_db=60))
    assert report.problems == (QualityProblem.TOO_NOISY,)


def test_quiet_speech_is_too_quiet(speech: dict[str, AudioClip]) -> None:
    report = assess(scaled(speech["dave"], -28), CONFIG)
    assert report.problems == (QualityProblem.TOO_QUIET,)
    assert report.speech_level_dbfs < -45
    level = report.speech_level_dbfs
    assert report.reasons == (f"speech level {level:.0f} dBFS is too quiet (need -45 dBFS)",)
    # The level is measured over the frames heard as speech, and fewer soft frames are heard in quiet speech.
    assert report.speech_level_dbfs < assess(speech["dave"], CONFIG).speech_level_dbfs - 20


def test_short_speech_is_too_short_with_the_numbers(speech: dict[str, AudioClip]) -> None:
    clip = speech["alice"]
    short = AudioClip(clip.samples[: int(1.5 * clip.sample_rate)], clip.sample_rate)
    report = assess(short, CONFIG, min_speech_s=3.0)
    assert report.problems == (QualityProblem.TOO_SHORT,)
    assert 0.5 < report.net_speech_s < 1.3
    shown = float(re.fullmatch(r"only ([\d.]+) s of speech; need 3.0 s", report.reasons[0]).group(1))
    assert report.net_speech_s - 0.1 < shown <= report.net_speech_s
    with pytest.raises(TooLittleSpeechError) as info:
        require_usable(report, min_speech_s=3.0)
    assert info.value.net_speech_s == report.net_speech_s and info.value.required_s == 3.0
    assert assess(short, CONFIG).ok  # no minimum asked for, nothing wrong


@pytest.mark.parametrize("kind", ["silence", "white noise", "50 Hz hum"])
def test_no_speech_at_all_is_silent(kind: str) -> None:
    report = assess(signal(kind, 8000), CONFIG, min_speech_s=3.0)
    assert report.problems == (QualityProblem.SILENT,)
    assert report.net_speech_s == 0.0 and report.snr_db is None and report.speech_level_dbfs is None
    assert report.reasons[0].startswith("no speech detected in 5.0 s of audio")
    if kind == "white noise":
        assert re.search(r"background noise at -2[01] dBFS may be drowning it", report.reasons[0])
    with pytest.raises(SilentAudioError, match="no speech detected"):
        require_usable(report)


def test_several_problems_are_all_reported(speech: dict[str, AudioClip]) -> None:
    clip = speech["bob"]
    short = AudioClip(clip.samples[: int(2.0 * clip.sample_rate)], clip.sample_rate)
    short_and_noisy = with_noise(short, -25)
    report = assess(short_and_noisy, CONFIG, min_speech_s=3.0)
    assert report.problems == (QualityProblem.TOO_SHORT, QualityProblem.TOO_NOISY)
    with pytest.raises(TooLittleSpeechError, match=r"only [\d.]+ s of speech; need 3.0 s; SNR"):
        require_usable(report, min_speech_s=3.0)


def test_empty_audio_is_an_error_not_a_report() -> None:
    empty = AudioClip(np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(EmptyAudioError, match="empty"):
        ensure_not_empty(empty)
    with pytest.raises(EmptyAudioError):
        assess(empty, CONFIG)
    ensure_not_empty(signal("silence", 8000, 0.1))  # silent but not empty: fine here


def test_a_given_detector_is_used(speech: dict[str, AudioClip]) -> None:
    clip = speech["alice"]
    coarse = assess(clip, CONFIG, detector=SpeechDetector(frame_ms=10))
    default = assess(clip, CONFIG)
    assert coarse.ok and default.ok
    assert coarse.net_speech_s != default.net_speech_s  # 10 ms frames cut speech at other edges


@pytest.mark.parametrize("rate", [8000, 16000])
def test_the_live_counter_hands_the_engine_the_very_analysis_a_second_pass_would_make(say, rate):
    """The call flow's VAD frames are reused by the engine: they must equal the batch detector's, bit for bit."""
    from voiceprints.audio.vad import SpeechDetector, StreamingSpeechCounter

    clip = say("alice", "My voice is my password, please verify me now.", rate)
    counter = StreamingSpeechCounter(rate, aggressiveness=2)
    pcm = clip.to_pcm16()
    for i in range(0, len(pcm), 320):  # 20 ms chunks at 8 kHz, as a transport delivers them
        counter.push(pcm[i:i + 320])
    live, detector = counter.analysis(), SpeechDetector(2)
    heard = counter.audio()
    batch = detector.analyse(heard)
    assert detector.matches(live, heard) and live.frame_count == batch.frame_count > 50
    assert np.array_equal(live.speech, batch.speech)
    assert np.array_equal(live.energy_db, batch.energy_db) and np.array_equal(live.noise_floor_db, batch.noise_floor_db)
    assert detector.analysis_of(heard, live) is live
    assert not SpeechDetector(3).matches(live, heard)  # another detector's frames are never reused
