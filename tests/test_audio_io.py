"""Reading what IVRs and recorders write, and refusing bad files with errors that say why.

Files are produced with sox, an independent implementation, so a reader that
only agrees with our own writer would not pass.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.speech import SENTENCES
from voiceprints.audio.clip import AudioClip
from voiceprints.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from voiceprints.audio.io import AudioFileNotFoundError, read_audio, write_wav
from voiceprints.errors import AudioError, CorruptAudioError, EmptyAudioError, UnsupportedAudioError

pytestmark = pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")


def sox(*args: str | Path) -> None:
    # -D: no dither, so G.711 output is a pure function of the input samples.
    subprocess.run(["sox", "-D", *map(str, args)], check=True, capture_output=True, timeout=30)


def snr_db(reference: np.ndarray, test: np.ndarray) -> float:
    ref = reference.astype(np.float64)
    return float(10 * np.log10(np.sum(ref**2) / np.sum((ref - test.astype(np.float64)) ** 2)))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, say) -> dict[str, Path]:
    """One utterance as 16 kHz PCM WAV, plus everything sox makes of it."""
    d = tmp_path_factory.mktemp("audio_io")
    speech = say("carol", SENTENCES[3], 16000)
    f = {"wav16": write_wav(d / "speech16.wav", speech)}
    sox(f["wav16"], f.setdefault("flac", d / "speech.flac"))
    sox(f["wav16"], "-r", "8000", f.setdefault("wav8", d / "speech8.wav"))
    sox(f["wav8"], "-e", "u-law", f.setdefault("ulaw_wav", d / "speech_ulaw.wav"))
    sox(f["wav8"], "-e", "a-law", f.setdefault("alaw_wav", d / "speech_alaw.wav"))
    sox(f["wav8"], "-t", "ul", f.setdefault("ul", d / "speech.ul"))
    sox(f["wav8"], "-t", "al", f.setdefault("al", d / "speech.al"))
    f["ulaw"] = d / "speech.ulaw"  # Asterisk's extensions for the same raw bytes
    f["ulaw"].write_bytes(f["ul"].read_bytes())
    f["alaw"] = d / "speech.alaw"
    f["alaw"].write_bytes(f["al"].read_bytes())
    f["sln"] = d / "speech.sln"
    sox(f["wav8"], "-t", "raw", "-e", "signed-integer", "-b", "16", "-L", f["sln"])
    return f


def test_wav_reads_as_mono_float_at_its_own_rate(files: dict[str, Path]) -> None:
    clip = read_audio(files["wav16"])
    data, rate = sf.read(files["wav16"], dtype="int16")
    assert clip.sample_rate == rate == 16000
    assert clip.samples.dtype == np.float32
    assert np.array_equal(clip.samples, data.astype(np.float32) / 32768)


def test_flac_written_by_sox_decodes_to_the_same_samples_as_the_wav(files: dict[str, Path]) -> None:
    assert np.array_equal(read_audio(files["flac"]).samples, read_audio(files["wav16"]).samples)


@pytest.mark.parametrize(("raw", "wav"), [("ul", "ulaw_wav"), ("ulaw", "ulaw_wav"), ("al", "alaw_wav"),
                                          ("alaw", "alaw_wav")])
def test_raw_g711_from_sox_matches_g711_inside_wav_and_the_original(files: dict[str, Path], raw: str,
                                                                     wav: str) -> None:
    from_raw = read_audio(files[raw])
    assert from_raw.sample_rate == 8000  # the telephony default for headerless files
    # libsndfile decodes the WAV container; our decoder must give identical samples for the same codes.
    assert np.array_equal(from_raw.samples, read_audio(files[wav]).samples)
    assert 30 < snr_db(read_audio(files["wav8"]).samples, from_raw.samples) < 45


def test_sox_and_our_encoder_pick_the_same_or_an_adjacent_g711_level(files: dict[str, Path]) -> None:
    pcm = read_audio(files["wav8"]).samples
    all_codes = np.arange(256, dtype=np.uint8).tobytes()
    for encode, decode, raw in ((ulaw_encode, ulaw_decode, files["ul"]),
                                (alaw_encode, alaw_decode, files["al"])):
        levels = np.unique(decode(all_codes))
        ours = np.searchsorted(levels, decode(encode(pcm)))
        theirs = np.searchsorted(levels, decode(raw.read_bytes()))
        # sox rounds before quantising and is not bit-exact with G.191, but a
        # real disagreement (wrong segment, wrong sign) would be many levels off.
        assert np.all(np.abs(ours - theirs) <= 1)
        assert np.mean(ours == theirs) > 0.8


def test_raw_bytes_need_the_format_and_take_the_given_rate(files: dict[str, Path]) -> None:
    data = files["ul"].read_bytes()
    clip = read_audio(data, format="ulaw", sample_rate=16000)
    assert clip.sample_rate == 16000
    assert np.array_equal(clip.samples, ulaw_decode(data))
    assert np.array_equal(read_audio(files["al"].read_bytes(), format="a-law").samples,
                          alaw_decode(files["al"].read_bytes()))
    # The format argument overrides a misleading extension.
    assert np.array_equal(read_audio(files["ul"], format="alaw").samples, alaw_decode(data))


def test_asterisk_signed_linear_files_read_at_the_rate_their_extension_implies(files: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    clip = read_audio(files["sln"])
    assert clip.sample_rate == 8000
    assert np.array_equal(clip.samples, read_audio(files["wav8"]).samples)
    wide = tmp_path / "speech.sln16"
    wide.write_bytes(read_audio(files["wav16"]).to_pcm16())
    assert read_audio(wide).sample_rate == 16000
    odd = tmp_path / "cut.sln"
    odd.write_bytes(files["sln"].read_bytes()[:1001])
    with pytest.raises(CorruptAudioError, match=r"cut\.sln.*even number of bytes.*1001"):
        read_audio(odd)


def test_wav_bytes_are_read_without_a_file(files: dict[str, Path]) -> None:
    assert np.array_equal(read_audio(files["wav16"].read_bytes()).samples, read_audio(files["wav16"]).samples)


def test_stereo_is_averaged_to_mono(files: dict[str, Path], tmp_path: Path) -> None:
    mono = read_audio(files["wav16"]).samples
    same = tmp_path / "dual.wav"
    sox("-M", files["wav16"], files["wav16"], same)
    assert np.allclose(read_audio(same).samples, mono, atol=1e-6)
    sox(files["wav16"], tmp_path / "silent.wav", "vol", "0")
    mixed = tmp_path / "mixed.wav"
    sox("-M", files["wav16"], tmp_path / "silent.wav", mixed)
    assert np.allclose(read_audio(mixed).samples, mono / 2, atol=1e-4)


def test_more_than_two_channels_are_refused(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "conference.wav"
    sox("-M", files["wav16"], files["wav16"], files["wav16"], path)
    with pytest.raises(UnsupportedAudioError, match=r"conference\.wav has 3 channels"):
        read_audio(path)


@pytest.mark.parametrize("rate", [4000, 96000])
def test_sample_rates_outside_8_to_48_khz_are_refused_naming_the_rate(files: dict[str, Path], tmp_path: Path,
                                                                      rate: int) -> None:
    path = tmp_path / f"odd_{rate}.wav"
    sox(files["wav16"], "-r", str(rate), path)
    with pytest.raises(UnsupportedAudioError, match=rf"{rate} Hz.*8000-48000 Hz"):
        read_audio(path)
    with pytest.raises(UnsupportedAudioError, match=rf"{rate} Hz"):
        read_audio(files["ul"], sample_rate=rate)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 24000, 32000, 44100, 48000])
def test_common_sample_rates_are_accepted(files: dict[str, Path], tmp_path: Path, rate: int) -> None:
    path = tmp_path / f"speech_{rate}.wav"
    sox(files["wav16"], "-r", str(rate), path)
    clip = read_audio(path)
    assert clip.sample_rate == rate
    assert clip.duration_s == pytest.approx(read_audio(files["wav16"]).duration_s, abs=0.01)


def test_a_rate_that_contradicts_the_header_is_an_error(files: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedAudioError, match=r"16000 Hz according to its header, but 8000 Hz"):
        read_audio(files["wav16"], sample_rate=8000)
    assert read_audio(files["wav16"], sample_rate=16000).sample_rate == 16000


def test_a_missing_file_is_reported_by_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "call.wav"
    with pytest.raises(AudioFileNotFoundError, match=r"audio file not found: .*nowhere/call\.wav") as info:
        read_audio(path)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, AudioError)
    with pytest.raises(AudioFileNotFoundError, match="directory"):
        read_audio(tmp_path)


def test_a_truncated_wav_is_corrupt_not_silently_short(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "upload.wav"
    path.write_bytes(files["wav16"].read_bytes()[:20000])
    with pytest.raises(CorruptAudioError, match=r"upload\.wav is truncated.*promises \d+ bytes.*only 19956"):
        read_audio(path)


def test_a_wav_cut_inside_its_header_is_corrupt(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "header.wav"
    path.write_bytes(files["wav16"].read_bytes()[:30])
    with pytest.raises(CorruptAudioError, match=r"header\.wav is corrupt or truncated"):
        read_audio(path)


def test_a_truncated_flac_is_corrupt(files: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "cut.flac"
    path.write_bytes(files["flac"].read_bytes()[: files["flac"].stat().st_size // 2])
    with pytest.raises(CorruptAudioError, match=r"cut\.flac"):
        read_audio(path)


def test_garbage_is_corrupt_or_unsupported_depending_on_what_it_claims_to_be(tmp_path: Path) -> None:
    junk = np.random.default_rng(7).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    (tmp_path / "junk.wav").write_bytes(junk)
    with pytest.raises(CorruptAudioError, match=r"junk\.wav is corrupt"):
        read_audio(tmp_path / "junk.wav")
    (tmp_path / "movie.mp4").write_bytes(junk)
    with pytest.raises(UnsupportedAudioError, match=r"movie\.mp4 is not in a format we read.*\.ulaw"):
        read_audio(tmp_path / "movie.mp4")
    with pytest.raises(CorruptAudioError, match=r"audio data \(4000 bytes\).*format='ulaw'"):
        read_audio(junk)


def test_an_unknown_format_name_is_refused(files: dict[str, Path]) -> None:
    with pytest.raises(UnsupportedAudioError, match=r"unknown audio format 'gsm'"):
        read_audio(files["ul"], format="gsm")


def test_empty_files_are_empty_audio(files: dict[str, Path], tmp_path: Path) -> None:
    header_only = tmp_path / "nothing.wav"
    sox("-n", "-r", "8000", "-c", "1", "-b", "16", header_only, "trim", "0", "0")
    for path in (header_only, tmp_path / "zero.wav", tmp_path / "zero.ulaw"):
        if path != header_only:
            path.write_bytes(b"")
        with pytest.raises(EmptyAudioError, match=path.name):
            read_audio(path)
    with pytest.raises(EmptyAudioError):
        read_audio(b"", format="alaw")


def test_write_wav_round_trips_through_other_tools(tmp_path: Path, say) -> None:
    speech = say("dave", SENTENCES[4], 8000)
    path = write_wav(tmp_path / "out.wav", speech)
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert np.max(np.abs(read_audio(path).samples - speech.samples)) <= 1 / 32768
    # A μ-law WAV of ours converts with sox like any other.
    g711 = write_wav(tmp_path / "out_ulaw.wav", speech, subtype="ULAW")
    assert sf.info(g711).subtype == "ULAW"
    sox(g711, "-e", "signed-integer", "-b", "16", tmp_path / "back.wav")
    assert 30 < snr_db(speech.samples, read_audio(tmp_path / "back.wav").samples) < 45


def test_a_clip_read_back_is_an_audio_clip(files: dict[str, Path]) -> None:
    clip = read_audio(files["ulaw"])
    assert isinstance(clip, AudioClip) and clip.samples.ndim == 1 and len(clip.samples) > 0
