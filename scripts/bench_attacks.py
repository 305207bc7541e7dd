#!/usr/bin/env python
"""Attack-defence benchmark on the real recordings in ../shared/data (never copied into the project).

For each defence of issue 8, the detection rate on simulated attacks, the
false-alarm rate on genuine callers, and the CPU cost of one check on one core:

* liveness  - digit-string challenge against the caller's own digit templates (FSDD)
* liveness-voice, recording-then-reader - whose voice says the answer: a recording of the victim,
  then another person reading the asked digits (issue 18)
* natural-enrolment - digit templates from "zero ... nine" said without pauses (issue 18)
* replay    - fingerprints of earlier calls against a simulated loudspeaker replay
* spoof     - AASIST synthetic-voice risk on telephone audio (espeak-ng synthetic speech)
* watchlist - 1:N screen of a caller against a fraudster list of real speakers

Everything goes through the telephone channel (voiceprints/audio/telephone.py).

    OPENBLAS_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/bench_attacks.py [--data ../shared/data]
        [--only liveness,liveness-voice,recording-then-reader,natural-enrolment,replay,spoof,watchlist]
        [--json bench-attacks.json] [--cache DIR]

Slow parts (AASIST scores, embeddings) are cached under --cache, so re-running
a section to look at another threshold takes seconds.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from voiceprints.audio.clip import AudioClip  # noqa: E402
from voiceprints.audio.io import read_audio  # noqa: E402
from voiceprints.audio.replay_sim import simulate_replay  # noqa: E402
from voiceprints.audio.telephone import telephone_channel  # noqa: E402

FSDD_SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


# --- data ----------------------------------------------------------------------
class Data:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.rows = list(csv.DictReader((root / "manifest.csv").open()))

    def librispeech(self, role: str) -> list[tuple[str, Path]]:
        return [(r["speaker"], self.root / r["path"]) for r in self.rows if r["role"] == role]

    def digit(self, digit: int, speaker: str, take: int) -> AudioClip:
        data, rate = sf.read(self.root / "fsdd" / "recordings" / f"{digit}_{speaker}_{take}.wav", dtype="float32")
        return AudioClip(data if data.ndim == 1 else data.mean(axis=1), rate)

    def digit_string(self, digits: str, speaker: str, takes: list[int], rng: np.random.Generator) -> AudioClip:
        """One speaker's isolated digits joined into a string, with 0-250 ms of low noise between them
        (a caller reading digits, sometimes running them together), at 8 kHz before the channel."""
        parts = [np.zeros(800, np.float32)]
        for ch, take in zip(digits, takes):
            parts.append(self.digit(int(ch), speaker, take).samples)
            parts.append((rng.standard_normal(int(rng.integers(0, 2000))) * 1e-3).astype(np.float32))
        return AudioClip(np.concatenate(parts), 8000)


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def time_per_call(fn: Callable[[], object], repeat: int = 20) -> tuple[float, float]:
    """Median and p95 wall time in ms of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times)), float(np.percentile(times, 95))


# --- synthetic speech (espeak-ng) ----------------------------------------------------
ESPEAK_VOICES = ("en-us+f2", "en+m3", "en-gb+f4", "en-gb-scotland+m1", "en-029+f3", "en-us+m7",
                 "es+f1", "es+m2", "es-419+f3", "es-419+m4", "en+klatt", "es+Alicia")
ESPEAK_TEXTS = (
    "My account number is four five seven two, and I would like to check my balance today.",
    "I am calling about the payment I made last week, it has not arrived yet.",
    "Please transfer me to someone who can help with my credit card statement.",
    "Quisiera saber el saldo de mi cuenta y los movimientos de esta semana.",
    "Llamo porque mi tarjeta nueva todavía no ha llegado a mi casa.",
)


def espeak_clips() -> list[AudioClip]:
    from ivr.synth import Voice, espeak

    clips = []
    for i, voice in enumerate(ESPEAK_VOICES):
        for j, text in enumerate(ESPEAK_TEXTS):
            clips.append(espeak(Voice(voice, voice, 30 + (7 * i + 11 * j) % 50, 140 + (13 * i + 5 * j) % 40), text))
    return clips


# --- spoof ---------------------------------------------------------------------------
def bench_spoof(data: Data, cache: Path) -> dict[str, object]:
    import torch

    from voiceprints.spoof.detector import SpoofDetector

    torch.set_num_threads(1)
    detector = SpoofDetector.load(threshold=0.0, max_windows=1)
    path = cache / "spoof_scores.json"
    scores: dict[str, list[float]] = json.loads(path.read_text()) if path.exists() else {}
    rng = np.random.default_rng(8)

    def run(name: str, clips: Callable[[], list[AudioClip]]) -> list[float]:
        if name not in scores:
            t0 = time.time()
            scores[name] = [float(np.mean(detector.bonafide_logits(c))) for c in clips()]
            path.write_text(json.dumps(scores))
            print(f"  spoof: {name}: {len(scores[name])} clips in {time.time() - t0:.0f} s", file=sys.stderr)
        return scores[name]

    genuine_ls = run("genuine_librispeech", lambda: [telephone_channel(read_audio(p))
                                                     for _, p in data.librispeech("eval") + data.librispeech("cohort")])
    genuine_fsdd = run("genuine_fsdd", lambda: [
        telephone_channel(data.digit_string("0123456789", s, [t] * 10, rng)) for s in FSDD_SPEAKERS for t in range(0, 50, 5)])
    synthetic = run("synthetic_espeak", lambda: [telephone_channel(c) for c in espeak_clips()])
    replayed = run("replay_librispeech", lambda: [simulate_replay(read_audio(p), rng) for _, p in data.librispeech("eval")])
    genuine = np.array(genuine_ls + genuine_fsdd)
    synth = np.array(synthetic)
    # Threshold: flag below it; the highest one that flags at most 1 % of genuine callers
    # (the k-th lowest genuine score, k = floor(1 % of n): exactly k scores lie below it).
    threshold = float(np.sort(genuine)[int(0.01 * len(genuine))])
    default_flag = float(np.mean(genuine < 0.0))
    clip = telephone_channel(read_audio(data.librispeech("eval")[0][1]))
    ms1, p95_1 = time_per_call(lambda: detector.score(clip), repeat=5)
    detector2 = SpoofDetector(detector.model, 0.0, max_windows=2)
    ms2, _ = time_per_call(lambda: detector2.score(clip), repeat=3)
    return {
        "genuine_trials": len(genuine), "synthetic_trials": len(synth), "replay_trials": len(replayed),
        "genuine_median": float(np.median(genuine)), "synthetic_median": float(np.median(synth)),
        "replay_median": float(np.median(replayed)),
        "threshold_for_1pct_false_flags": threshold,
        "false_flags_at_threshold": float(np.mean(genuine < threshold)),
        "synthetic_detected_at_threshold": float(np.mean(synth < threshold)),
        "replay_detected_at_threshold": float(np.mean(np.array(replayed) < threshold)),
        "false_flags_at_default_0": default_flag,
        "synthetic_detected_at_default_0": float(np.mean(synth < 0.0)),
        "eer": _eer(genuine, synth),
        "ms_per_check_1_window": ms1, "ms_per_check_2_windows": ms2, "clip_s": clip.duration_s,
    }


def _eer(genuine: np.ndarray, attack: np.ndarray) -> float:
    """Equal error rate for scores where genuine is high and attack is low."""
    thresholds = np.unique(np.concatenate([genuine, attack]))
    frr = np.array([np.mean(genuine < t) for t in thresholds])
    far = np.array([np.mean(attack >= t) for t in thresholds])
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


# --- liveness ------------------------------------------------------------------------
MARGINS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3)


def bench_liveness(data: Data, cache: Path, repetitions: int = 3, strings_per_speaker: int = 100
                   ) -> dict[str, object]:
    """Digit-string challenge on FSDD: templates from ``repetitions`` takes of each digit (the enrolment
    line), challenge answers from the other takes; every answer scored against the asked string
    (genuine), a random other string (a replayed earlier answer), and a one-digit change (stress)."""
    from voiceprints.config import LivenessConfig
    from voiceprints.liveness import DigitStringVerifier, DigitTemplates

    # Every margin is recorded and thresholds applied below; the stretch check is the configured one
    # (a failed check is recorded as an infinite margin).
    verifier = DigitStringVerifier(max_margin=1e9, max_stretch=LivenessConfig().max_stretch)
    rng = np.random.default_rng(88)
    margins: dict[str, list[float]] = defaultdict(list)
    exact: list[bool] = []
    per_speaker: dict[str, list[float]] = defaultdict(list)
    speech = [telephone_channel(read_audio(p)) for _, p in data.librispeech("eval")[::5]]
    answer_for_cost = None
    templates_for_cost = None

    def margin(templates: DigitTemplates, clip: AudioClip, asked: str) -> float:
        result = verifier.verify(templates, clip, asked)
        return float("inf") if result.margin is None or not result.passed else result.margin

    def random_string() -> str:
        return "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(4, 7))))

    for speaker in FSDD_SPEAKERS:
        takes = rng.permutation(50)
        enrol, test = takes[:repetitions], takes[repetitions:]
        templates = DigitTemplates.from_digit_clips(
            {str(d): [telephone_channel(data.digit(d, speaker, int(t))) for t in enrol] for d in range(10)})
        for _ in range(strings_per_speaker):
            asked = random_string()
            answer = telephone_channel(data.digit_string(asked, speaker, [int(rng.choice(test)) for _ in asked], rng))
            result = verifier.verify(templates, answer, asked)
            m = float("inf") if result.margin is None or not result.passed else result.margin
            margins["genuine"].append(m)
            per_speaker[speaker].append(m)
            exact.append(result.heard == asked)
            other = asked
            while other == asked:
                other = random_string()
            margins["wrong string"].append(margin(templates, answer, other))
            pos = int(rng.integers(len(asked)))
            changed = asked[:pos] + str((int(asked[pos]) + int(rng.integers(1, 10))) % 10) + asked[pos + 1:]
            margins["one digit changed (stress)"].append(margin(templates, answer, changed))
            answer_for_cost, templates_for_cost = (answer, asked), templates
        for _ in range(strings_per_speaker // 4):
            ten = telephone_channel(data.digit_string("0123456789", speaker, [int(rng.choice(test)) for _ in range(10)], rng))
            margins["enrolment line replayed"].append(margin(templates, ten, random_string()))
        for clip in speech:
            margins["other speech (sentences)"].append(margin(templates, clip, random_string()))
        print(f"  liveness: {speaker} done", file=sys.stderr)
    configured = LivenessConfig().max_margin
    table = {kind: {str(t): float(np.mean(np.array(v) <= t)) for t in MARGINS} for kind, v in margins.items()}
    assert answer_for_cost is not None and templates_for_cost is not None
    clip, asked = answer_for_cost
    ms, p95 = time_per_call(lambda: verifier.verify(templates_for_cost, clip, asked), repeat=10)
    return {
        "repetitions": repetitions, "configured_max_margin": configured,
        "trials": {k: len(v) for k, v in margins.items()},
        "accepted_at_margin": table,
        "accepted_at_configured": {k: float(np.mean(np.array(v) <= configured)) for k, v in margins.items()},
        "genuine_accepted_per_speaker": {s: float(np.mean(np.array(v) <= configured)) for s, v in per_speaker.items()},
        "best_string_is_asked": float(np.mean(exact)),
        "ms_per_check": ms, "ms_per_check_p95": p95, "answer_s": clip.duration_s, "answer_digits": len(asked),
    }


def bench_liveness_2(data: Data, cache: Path) -> dict[str, object]:
    return bench_liveness(data, cache, repetitions=2, strings_per_speaker=50)


def bench_liveness_5(data: Data, cache: Path) -> dict[str, object]:
    return bench_liveness(data, cache, repetitions=5, strings_per_speaker=50)


def bench_pocketsphinx(data: Data, cache: Path) -> dict[str, object]:
    """The other route for English: pocketsphinx 5 (its wheel's en-us model) with a digit grammar.

    Set-up that matters (measured): 0.5 s of low noise before and after the speech (the model's
    batch CMN and silence models need it; without padding many digits decode to nothing), the
    8 kHz call resampled to 16 kHz (the shipped model is wideband; a native 8 kHz front end does
    not load with it), noise removal off. Optional: needs `pip install pocketsphinx`.
    """
    try:
        from pocketsphinx import Decoder, get_model_path
    except ImportError:
        return {"skipped": "pocketsphinx is not installed (pip install pocketsphinx==5.1.1)"}
    from voiceprints.audio.resample import resample

    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    model = Path(get_model_path()) / "en-us"
    alternatives = " | ".join(words + ("oh",))

    def decoder(repeat: str) -> object:
        grammar = cache / f"digits{repeat or '1'}.gram"
        grammar.write_text(f"#JSGF V1.0;\ngrammar digits;\npublic <d> = ( {alternatives} ){repeat} ;\n")
        return Decoder(hmm=str(model / "en-us"), dict=str(model / "cmudict-en-us.dict"), jsgf=str(grammar),
                       loglevel="FATAL", remove_noise=False)

    rng = np.random.default_rng(9)

    def decode(dec, clip: AudioClip) -> str:  # type: ignore[no-untyped-def]
        pad = (rng.standard_normal(4000) * 3e-4).astype(np.float32)
        x = resample(telephone_channel(AudioClip(np.concatenate([pad, clip.samples, pad]), clip.sample_rate)),
                     16000).samples
        dec.start_utt()
        dec.process_raw((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(), full_utt=True)
        dec.end_utt()
        hyp = dec.hyp()
        spoken = [] if hyp is None else hyp.hypstr.replace("oh", "zero").split()
        return "".join(str(words.index(w)) for w in spoken if w in words)

    single, strings = decoder(""), decoder("+")
    digit_ok: dict[str, list[bool]] = defaultdict(list)
    string_ok = []
    for speaker in FSDD_SPEAKERS:
        for d in range(10):
            for t in rng.choice(50, 5, replace=False):
                digit_ok[speaker].append(decode(single, data.digit(d, speaker, int(t))) == str(d))
        for _ in range(20):
            asked = "".join(str(x) for x in rng.integers(0, 10, int(rng.integers(4, 7))))
            clip = data.digit_string(asked, speaker, [int(rng.integers(50)) for _ in asked], rng)
            string_ok.append(decode(strings, clip) == asked)
    all_digits = [ok for v in digit_ok.values() for ok in v]
    return {"digit_accuracy": float(np.mean(all_digits)), "digit_trials": len(all_digits),
            "digit_accuracy_per_speaker": {k: float(np.mean(v)) for k, v in digit_ok.items()},
            "strings_exactly_right": float(np.mean(string_ok)), "string_trials": len(string_ok)}


# --- replay --------------------------------------------------------------------------
def bench_replay(data: Data, cache: Path) -> dict[str, object]:
    from voiceprints.config import ReplayConfig
    from voiceprints.replay import ReplayReference, check_replay, fingerprint, match_score

    rng = np.random.default_rng(7)
    threshold = ReplayConfig().threshold
    eval_rows = data.librispeech("eval")
    clips = [read_audio(p) for _, p in eval_rows]
    speakers = [s for s, _ in eval_rows]
    stored = [fingerprint(telephone_channel(c)) for c in clips]
    replay_wide = [match_score(fingerprint(simulate_replay(c, rng)), f) for c, f in zip(clips, stored)]
    replay_call = [match_score(fingerprint(simulate_replay(telephone_channel(c), rng)), f) for c, f in zip(clips, stored)]
    n = len(clips)
    same_speaker = [match_score(stored[i], stored[j]) for i in range(n) for j in range(n)
                    if i != j and speakers[i] == speakers[j]]
    other_speaker = [match_score(stored[i], stored[j]) for i in range(n) for j in range(n)
                     if speakers[i] != speakers[j] and (i + j) % 3 == 0]
    # A genuine new call compared with the account's stored recordings (up to 9 here).
    per_attempt = [check_replay(stored[i], [ReplayReference(stored[j], str(j)) for j in range(n)
                                            if j != i and speakers[j] == speakers[i]], threshold).replay
                   for i in range(n)]
    # FSDD: strings of 7-10 distinct recordings (3-5 s of speech, what a verification needs: the
    # fingerprinted audio is the verification answer); the same digits re-spoken from other takes
    # of the same speaker as a stress case.
    fsdd_replay, fsdd_diff, fsdd_same_text = [], [], []
    for speaker in FSDD_SPEAKERS:
        pool = [(d, t) for d in range(10) for t in range(50)]
        order = rng.permutation(len(pool))
        used = 0
        strings = []
        for _ in range(40):
            k = int(rng.integers(7, 11))
            picks = [pool[i] for i in order[used:used + k]]
            used += k
            digits = "".join(str(d) for d, _ in picks)
            clip = data.digit_string(digits, speaker, [t for _, t in picks], rng)
            strings.append((digits, clip, fingerprint(telephone_channel(clip))))
        for digits, clip, fp in strings:
            fsdd_replay.append(match_score(fingerprint(simulate_replay(clip, rng)), fp))
            other_takes = [int(rng.integers(50)) for _ in digits]
            respoken = data.digit_string(digits, speaker, other_takes, rng)
            fsdd_same_text.append(match_score(fingerprint(telephone_channel(respoken)), fp))
        fsdd_diff += [match_score(a[2], b[2]) for a in strings for b in strings if a is not b]
    clip = telephone_channel(clips[0])
    fp0 = fingerprint(clip)
    refs = [ReplayReference(f, str(i)) for i, f in enumerate(stored[:10])]
    ms_fp, _ = time_per_call(lambda: fingerprint(clip))
    ms_check, _ = time_per_call(lambda: check_replay(fp0, refs, threshold))

    def rate(v: list[float], above: bool = True) -> float:
        return float(np.mean(np.array(v) >= threshold))

    return {
        "threshold": threshold,
        "replay_flagged_librispeech": rate(replay_wide), "replay_trials_librispeech": len(replay_wide),
        "replay_of_call_recording_flagged_librispeech": rate(replay_call),
        "replay_flagged_fsdd": rate(fsdd_replay), "replay_trials_fsdd": len(fsdd_replay),
        "replay_score_min": float(min(replay_wide + replay_call + fsdd_replay)),
        "same_speaker_other_utterance_flagged": rate(same_speaker), "same_speaker_trials": len(same_speaker),
        "same_speaker_max": float(max(same_speaker)),
        "other_speaker_flagged": rate(other_speaker), "other_speaker_trials": len(other_speaker),
        "fsdd_other_string_flagged": rate(fsdd_diff), "fsdd_other_string_trials": len(fsdd_diff),
        "fsdd_other_string_max": float(max(fsdd_diff)),
        "genuine_attempt_vs_account_history_flagged": float(np.mean(per_attempt)), "attempts": len(per_attempt),
        "stress_same_digits_respoken_flagged": rate(fsdd_same_text), "stress_trials": len(fsdd_same_text),
        "fingerprint_bytes_per_s": float(np.mean([len(f.to_bytes()) / f.duration_s for f in stored])),
        "ms_fingerprint": ms_fp, "clip_s": clip.duration_s, "ms_check_10_references": ms_check,
    }


# --- watchlist -------------------------------------------------------------------------
def _embeddings(data: Data, cache: Path) -> dict[str, object]:
    from ivr.settings import Settings
    from voiceprints.audio.vad import SpeechDetector
    from voiceprints.embedding.select import load_embedder

    embedder = load_embedder(Settings().model)
    path = cache / f"embeddings-{embedder.model_id.replace('/', '_')}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return {k: z[k] for k in z.files} | {"model_id": embedder.model_id, "embedder": embedder}
    detector = SpeechDetector()
    rng = np.random.default_rng(3)

    def embed(clips: list[AudioClip]) -> np.ndarray:
        return embedder.embed_batch([detector.speech_only(telephone_channel(c)) for c in clips])

    eval_rows, cohort_rows = data.librispeech("eval"), data.librispeech("cohort")
    fsdd = [(s, t) for s in FSDD_SPEAKERS for t in range(0, 50, 5)]
    out = {
        "eval": embed([read_audio(p) for _, p in eval_rows]),
        "eval_speakers": np.array([s for s, _ in eval_rows]),
        "cohort": embed([read_audio(p) for _, p in cohort_rows]),
        "cohort_speakers": np.array([s for s, _ in cohort_rows]),
        "fsdd": embed([data.digit_string("0123456789", s, [t] * 10, rng) for s, t in fsdd]),
        "fsdd_speakers": np.array([s for s, _ in fsdd]),
    }
    np.savez(path, **out)
    return out | {"model_id": embedder.model_id, "embedder": embedder}


def bench_liveness_voice(data: Data, cache: Path) -> dict[str, object]:
    """Is the challenge answer said by the enrolled caller, and by the person who spoke before it?

    The attack of issue 18: a recording of the victim at the voice prompt, then the attacker reads
    the asked digits himself. Genuine: the caller's own voice sample, then their own answer.
    FSDD: 6 speakers, each the others' attacker, answers are 4-6 digit strings. LibriSpeech: 10 eval
    speakers; answers are 2-3 s pieces of read speech; attackers are the other eval speakers and the
    251 cohort speakers. Scores are cosines of the answer's embedding with the voiceprint ("print")
    and with the call's voice sample ("sample"), telephone channel throughout.
    """
    from ivr.settings import Settings
    from voiceprints.audio.vad import SpeechDetector
    from voiceprints.embedding.select import load_embedder
    from voiceprints.scoring.enrolment import combine

    embedder = load_embedder(Settings().model)
    detector = SpeechDetector()
    rng = np.random.default_rng(18)
    path = cache / f"liveness-voice-{embedder.model_id.replace('/', '_')}.npz"

    def embed(clips: list[AudioClip]) -> np.ndarray:
        return embedder.embed_batch([detector.speech_only(telephone_channel(c)) for c in clips])

    def crop(clip: AudioClip, seconds: float) -> AudioClip:
        """``seconds`` of the clip's speech (after the channel), as an answer of that much net speech."""
        clip = detector.speech_only(telephone_channel(clip))
        n = int(seconds * clip.sample_rate)
        start = int(rng.integers(0, max(1, clip.samples.shape[0] - n)))
        return AudioClip(clip.samples[start:start + n], clip.sample_rate)

    def digits() -> str:
        return "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(4, 7))))

    if path.exists():
        z = np.load(path, allow_pickle=False)
        arrays = {k: z[k] for k in z.files}
    else:
        arrays = {}
        # FSDD: enrolment line = three "zero ... nine" strings; the call = one more string, then answers.
        prints, samples, answers, owners = [], [], [], []
        for speaker in FSDD_SPEAKERS:
            takes = [int(t) for t in rng.permutation(50)]
            enrol = embed([data.digit_string("0123456789", speaker, [t] * 10, rng) for t in takes[:3]])
            prints.append(combine(enrol)[0])
            samples.append(embed([data.digit_string("0123456789", speaker, [takes[3]] * 10, rng)])[0])
            rest = takes[4:]
            answers.append(embed([data.digit_string(digits(), speaker, [int(rng.choice(rest)) for _ in range(6)], rng)
                                  for _ in range(40)]))
            owners += [speaker] * 40
            print(f"  liveness-voice: FSDD {speaker} embedded", file=sys.stderr)
        arrays |= {"fsdd_prints": np.stack(prints), "fsdd_samples": np.stack(samples),
                   "fsdd_answers": np.concatenate(answers), "fsdd_owners": np.array(owners)}
        # LibriSpeech: enrol 3 utterances, the call's sample is the 4th, answers are pieces of the rest.
        by_speaker: dict[str, list[Path]] = defaultdict(list)
        for speaker, p in data.librispeech("eval"):
            by_speaker[speaker].append(p)
        speakers = sorted(by_speaker)
        prints, samples, answers, owners = [], [], [], []
        for speaker in speakers:
            clips = [read_audio(p) for p in by_speaker[speaker]]
            prints.append(combine(embed(clips[:3]))[0])
            samples.append(embed([clips[3]])[0])
            answers.append(embedder.embed_batch([crop(c, float(rng.uniform(2.0, 3.0))) for c in clips[4:]
                                                 for _ in range(4)]))
            owners += [speaker] * (4 * len(clips[4:]))
        cohort = embedder.embed_batch([crop(read_audio(p), float(rng.uniform(2.0, 3.0)))
                                       for _, p in data.librispeech("cohort")])
        arrays |= {"libri_prints": np.stack(prints), "libri_samples": np.stack(samples),
                   "libri_answers": np.concatenate(answers), "libri_owners": np.array(owners),
                   "libri_speakers": np.array(speakers), "libri_cohort_answers": cohort}
        np.savez(path, **arrays)

    def cos(rows: np.ndarray, v: np.ndarray) -> np.ndarray:
        return (rows @ v) / (np.linalg.norm(rows, axis=1) * np.linalg.norm(v))

    def scores(prints: np.ndarray, samples: np.ndarray, names: list[str], answers: np.ndarray,
               owners: np.ndarray, extra_attackers: np.ndarray | None = None) -> dict[str, np.ndarray]:
        genuine, attack = [], []
        for i, name in enumerate(names):
            mine = answers[owners == name]
            genuine.append(np.stack([cos(mine, prints[i]), cos(mine, samples[i])], axis=1))
            theirs = answers[owners != name]
            if extra_attackers is not None:
                theirs = np.concatenate([theirs, extra_attackers])
            # The call's voice sample is the victim's recording: the attacker's answer against both.
            attack.append(np.stack([cos(theirs, prints[i]), cos(theirs, samples[i])], axis=1))
        return {"genuine": np.concatenate(genuine), "attack": np.concatenate(attack)}

    sets = {
        "fsdd": scores(arrays["fsdd_prints"], arrays["fsdd_samples"], list(FSDD_SPEAKERS), arrays["fsdd_answers"],
                       arrays["fsdd_owners"]),
        "librispeech": scores(arrays["libri_prints"], arrays["libri_samples"], list(arrays["libri_speakers"]),
                              arrays["libri_answers"], arrays["libri_owners"], arrays["libri_cohort_answers"]),
    }
    grid = [round(t, 2) for t in np.arange(0.30, 0.86, 0.05)]
    table: dict[str, object] = {}
    for name, sc in sets.items():
        g, a = sc["genuine"], sc["attack"]
        table[name] = {
            "trials": {"genuine": len(g), "attack": len(a)},
            "genuine_pass_at_print_threshold": {str(t): float(np.mean(g[:, 0] >= t)) for t in grid},
            "attack_pass_at_print_threshold": {str(t): float(np.mean(a[:, 0] >= t)) for t in grid},
            "genuine_pass_at_sample_threshold": {str(t): float(np.mean(g[:, 1] >= t)) for t in grid},
            "attack_pass_at_sample_threshold": {str(t): float(np.mean(a[:, 1] >= t)) for t in grid},
            "eer_print": _eer(g[:, 0], a[:, 0]), "eer_sample": _eer(g[:, 1], a[:, 1]),
        }
    answer = telephone_channel(data.digit_string("48151", "theo", [1] * 5, rng))
    ms, p95 = time_per_call(lambda: embedder.embed(detector.speech_only(answer)), repeat=10)
    return {"model_id": embedder.model_id, "sets": table, "ms_per_answer_embedding": ms,
            "ms_per_answer_embedding_p95": p95}


def bench_recording_then_reader(data: Data, cache: Path, per_pair: int = 20) -> dict[str, object]:
    """The whole challenge as the engine runs it, on the attacker's terms (FSDD, telephone channel).

    Each speaker is the victim in turn: voiceprint from three "zero ... nine" strings, digit templates
    from three takes of each digit, the call's voice sample one more string (the victim's recording
    the attacker plays). Attack: each other speaker reads the asked digits (digit check against the
    victim's templates, then the answer's voice against the victim's voiceprint and the sample).
    Genuine: the victim reads them; "two tries" counts a second, fresh string after a refusal.
    """
    from ivr.settings import Settings
    from voiceprints.audio.vad import SpeechDetector
    from voiceprints.config import LivenessConfig
    from voiceprints.embedding.select import load_embedder
    from voiceprints.liveness import DigitStringVerifier, DigitTemplates
    from voiceprints.liveness.binding import AnswerVoice
    from voiceprints.scoring.enrolment import combine

    full = load_embedder(Settings().model)
    embedder = getattr(full, "parts", (full,))[0]  # what the engine embeds a challenge answer with
    config = LivenessConfig()
    voice = AnswerVoice.for_model(embedder.model_id.split("/")[0], config)
    assert voice is not None, f"no shipped answer thresholds for {embedder.model_id}"
    verifier = DigitStringVerifier.from_config(config)
    detector = SpeechDetector()
    rng = np.random.default_rng(181)

    def embed(clip: AudioClip) -> np.ndarray:
        return embedder.embed(detector.speech_only(clip))

    def digits() -> str:
        return "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(4, 7))))

    victims = {}
    for speaker in FSDD_SPEAKERS:
        takes = [int(t) for t in rng.permutation(50)]
        templates = DigitTemplates.from_digit_clips(
            {str(d): [telephone_channel(data.digit(d, speaker, t)) for t in takes[:3]] for d in range(10)})
        strings = [telephone_channel(data.digit_string("0123456789", speaker, [t] * 10, rng)) for t in takes[3:7]]
        victims[speaker] = (templates, combine(np.stack([embed(c) for c in strings[:3]]))[0], embed(strings[3]),
                            takes[7:])

    def attempt(victim: str, reader: str) -> tuple[bool, bool]:
        """(digit check passed, whole challenge passed) for ``reader`` answering ``victim``'s challenge."""
        templates, print_, sample, _ = victims[victim]
        asked = digits()
        answer = telephone_channel(data.digit_string(asked, reader, [int(rng.choice(victims[reader][3]))
                                                                      for _ in asked], rng))
        result = verifier.verify(templates, answer, asked)
        if not result.passed:
            return False, False
        return True, voice.check(embed(answer), print_, sample).passed

    attack = [attempt(v, r) for v in FSDD_SPEAKERS for r in FSDD_SPEAKERS if r != v for _ in range(per_pair)]
    genuine, two_tries = [], []
    for v in FSDD_SPEAKERS:
        for _ in range(per_pair * 2):
            first = attempt(v, v)[1]
            genuine.append(first)
            two_tries.append(first or attempt(v, v)[1])
    answer = telephone_channel(data.digit_string("48151", "theo", [1] * 5, rng))
    templates, print_, sample, _ = victims["theo"]
    ms, p95 = time_per_call(lambda: (verifier.verify(templates, answer, "48151"),
                                     voice.check(embed(answer), print_, sample)), repeat=10)
    return {
        "model": embedder.model_id, "thresholds": {"voice": voice.min_print, "continuity": voice.min_sample},
        "attack_trials": len(attack),
        "attack_passed_digit_check": float(np.mean([d for d, _ in attack])),
        "attack_accepted": float(np.mean([w for _, w in attack])),
        "genuine_trials": len(genuine),
        "genuine_first_try": float(np.mean(genuine)), "genuine_within_two_tries": float(np.mean(two_tries)),
        "ms_per_challenge_decision": ms, "ms_per_challenge_decision_p95": p95,
    }


def bench_natural_enrolment(data: Data, cache: Path, enrolments: int = 4, answers: int = 10) -> dict[str, object]:
    """Digit templates from "zero ... nine" said at a natural pace (issue 18), as the enrolment line makes them.

    The guide is the worker's own English digit prompts (ivr prompts build). FSDD: each speaker's ten
    digits of one take joined with 0-50 ms or 0-250 ms between them, three recordings from three takes,
    ``enrolments`` times per speaker with other takes; the challenge then asks random strings of the
    other takes. espeak-ng: the test voices at their
    default rate and +15 / -10 words a minute, one phrase. Sentences: three LibriSpeech readings (their
    first 5 s) at the digit prompt must give no templates.
    """
    import asyncio
    import dataclasses
    import tempfile

    from ivr.flows.digit_guide import DigitGuides
    from ivr.prompts.build import build_prompts
    from ivr.prompts.sources import DirectoryPromptSource
    from ivr.synth import espeak
    from tests.speech import SPEAKERS
    from voiceprints.config import LivenessConfig
    from voiceprints.errors import EnrolmentError
    from voiceprints.liveness import DigitStringVerifier, DigitTemplates

    with tempfile.TemporaryDirectory() as prompts:
        build_prompts(Path(prompts), ("en",))
        guide = asyncio.run(DigitGuides(DirectoryPromptSource(prompts)).for_language("en"))
    assert guide is not None
    verifier = DigitStringVerifier.from_config(LivenessConfig())
    rng = np.random.default_rng(180)
    words = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

    def digits() -> str:
        return "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(4, 7))))

    def natural(speaker: str, take: int, gap: int) -> AudioClip:
        parts = [np.zeros(800, np.float32)]
        for d in range(10):
            parts.append(data.digit(d, speaker, take).samples)
            parts.append((rng.standard_normal(int(rng.integers(0, gap + 1))) * 1e-3).astype(np.float32))
        return telephone_channel(AudioClip(np.concatenate(parts), 8000))

    def templates(recordings: list[AudioClip]) -> DigitTemplates | None:
        try:
            return DigitTemplates.from_sequences(recordings, guide, verifier)
        except EnrolmentError:
            return None

    out: dict[str, object] = {}
    for gap_ms in (50, 250):
        made, genuine, wrong, started = 0, [], [], time.perf_counter()
        for speaker, _ in [(s, n) for s in FSDD_SPEAKERS for n in range(enrolments)]:
            takes = [int(t) for t in rng.permutation(50)]
            got = templates([natural(speaker, t, gap_ms * 8) for t in takes[:3]])
            if got is None:
                continue
            made += 1
            for _ in range(answers):
                asked = digits()
                answer = telephone_channel(data.digit_string(asked, speaker, [int(rng.choice(takes[3:]))
                                                                              for _ in asked], rng))
                genuine.append(verifier.verify(got, answer, asked).passed)
                other = asked
                while other == asked:
                    other = digits()
                wrong.append(verifier.verify(got, answer, other).passed)
        out[f"fsdd_gaps_0_{gap_ms}ms"] = {
            "enrolments": len(FSDD_SPEAKERS) * enrolments, "templates_made": made,
            "right_string_accepted": float(np.mean(genuine)), "wrong_string_accepted": float(np.mean(wrong)),
            "answers": len(genuine), "s_per_enrolment_and_answers": (time.perf_counter() - started) / made}
    made, genuine = 0, []
    for voice in SPEAKERS.values():
        recordings = [telephone_channel(espeak(dataclasses.replace(voice, speed=voice.speed + d), " ".join(words)))
                      for d in (0, 15, -10)]
        got = templates(recordings)
        if got is None:
            continue
        made += 1
        for _ in range(10):
            asked = digits()
            answer = telephone_channel(espeak(voice, " ".join(words[int(c)] for c in asked)))
            genuine.append(verifier.verify(got, answer, asked).passed)
    out["espeak_voices"] = {"voices": len(SPEAKERS), "templates_made": made,
                            "right_string_accepted": float(np.mean(genuine)), "answers": len(genuine)}
    by_speaker: dict[str, list[Path]] = defaultdict(list)
    for speaker, p in data.librispeech("eval"):
        by_speaker[speaker].append(p)
    def first_5_s(path: Path) -> AudioClip:  # as long as the ten digits: refused for what is said, not its length
        clip = read_audio(path)
        return telephone_channel(AudioClip(clip.samples[: 5 * clip.sample_rate], clip.sample_rate))

    refused = [templates([first_5_s(p) for p in paths[:3]]) is None for paths in by_speaker.values()]
    out["sentences_at_the_digit_prompt"] = {"callers": len(refused), "refused": float(np.mean(refused))}
    return out


def bench_watchlist(data: Data, cache: Path) -> dict[str, object]:
    """False matches of genuine callers against a list of other real speakers, and hits on listed voices.

    Method (real speakers only): the 251 LibriSpeech cohort speakers are split at random into a
    *population* half (stands in for the enrolled customers; its mean is the screen's centre) and a
    *list* half. The watchlist holds the list half (one utterance each) plus the 10 LibriSpeech eval
    and 6 FSDD speakers, each enrolled from 3 utterances: 142 real speakers. Probes: the other
    utterances of the eval/FSDD speakers (hits against their own entry, false matches against the
    others) and the list-half cohort utterances (false matches against every other entry).
    A list of 1,000 needs more real speakers than the data has, so the per-entry false-match rate
    p is measured on all probe-entry pairs of different speakers and extrapolated:
    P(false match on a list of N) = 1 - (1 - p)^N (independent entries).
    """
    from voiceprints.config import WatchlistConfig
    from voiceprints.scoring.cosine import l2_normalise
    from voiceprints.watchlist import WatchlistScreen

    e = _embeddings(data, cache)
    config = WatchlistConfig()
    rng = np.random.default_rng(5)
    cohort, cohort_spk = e["cohort"], e["cohort_speakers"]
    order = rng.permutation(len(cohort))
    population, listed = order[: len(order) // 2], order[len(order) // 2:]
    entries, entry_names, probes, probe_names = [], [], [], []
    for group, spk_key in (("eval", "eval_speakers"), ("fsdd", "fsdd_speakers")):
        vecs, spks = e[group], e[spk_key]
        for s in sorted(set(spks)):
            idx = rng.permutation(np.flatnonzero(spks == s))
            entries.append(l2_normalise(vecs[idx[:3]].mean(axis=0)))
            entry_names.append(f"{group}:{s}")
            probes += [vecs[i] for i in idx[3:]]
            probe_names += [f"{group}:{s}"] * (len(idx) - 3)
    targets_from = len(probes)
    for i in listed:
        entries.append(cohort[i])
        entry_names.append(f"cohort:{cohort_spk[i]}")
        probes.append(cohort[i])
        probe_names.append(f"cohort:{cohort_spk[i]}")
    E, P = np.array(entries), np.array(probes)
    same = np.array(probe_names)[:, None] == np.array(entry_names)[None, :]
    centre = cohort[population].mean(axis=0)
    p_target = 1 - 0.99 ** (1 / 1000)  # per-entry rate giving 1 % false matches per call on 1,000 entries
    out: dict[str, object] = {"model_id": e["model_id"], "list_size_measured": len(entries),
                              "population_speakers": len(population)}
    for name, scores, threshold in (
        ("cosine", l2_normalise(P) @ l2_normalise(E).T, config.uncentred_threshold),
        ("centred", l2_normalise(P - centre) @ l2_normalise(E - centre).T, config.threshold),
    ):
        nontarget = scores[~same]
        hits = scores[:targets_from][same[:targets_from]]
        p = float(np.mean(nontarget >= threshold))
        upper = max(p, 3.0 / nontarget.size)  # rule of three when nothing was observed
        best = np.where(same, -np.inf, scores).max(axis=1)
        t_needed = float(np.quantile(nontarget, 1 - p_target))
        out[name] = {
            "threshold": threshold, "nontarget_pairs": int(nontarget.size), "per_entry_false_match": p,
            "list_false_match_measured": float(np.mean(best >= threshold)),
            "list_false_match_1000_extrapolated": float(1 - (1 - p) ** 1000),
            "list_false_match_1000_upper95": float(1 - (1 - upper) ** 1000),
            "max_nontarget": float(nontarget.max()),
            "threshold_for_1pct_at_1000": t_needed,
            "hit_rate": float(np.mean(hits >= threshold)), "hit_trials": int(hits.size),
        }
    screen = WatchlistScreen(e["model_id"], [f"x{i}" for i in range(1000)], np.resize(E, (1000, E.shape[1])),
                             threshold=config.threshold, uncentred_threshold=config.uncentred_threshold,
                             population=cohort[population])
    out["ms_screen_1000"], _ = time_per_call(lambda: screen.screen(P[0]), repeat=200)
    return out


SECTIONS: dict[str, Callable[[Data, Path], dict[str, object]]] = {
    "liveness": bench_liveness,
    "liveness-2": bench_liveness_2,
    "liveness-5": bench_liveness_5,
    "liveness-voice": bench_liveness_voice,
    "recording-then-reader": bench_recording_then_reader,
    "natural-enrolment": bench_natural_enrolment,
    "pocketsphinx": bench_pocketsphinx,
    "replay": bench_replay,
    "spoof": bench_spoof,
    "watchlist": bench_watchlist,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", default=",".join(SECTIONS))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("VOICEAUTH_DATA_DIR", "/tmp/voiceauth-bench")) / "bench-attacks")
    args = parser.parse_args()
    if not (args.data / "manifest.csv").exists():
        sys.exit(f"no recordings at {args.data} (expected manifest.csv there); pass --data")
    args.cache.mkdir(parents=True, exist_ok=True)
    data = Data(args.data)
    results = {}
    for name in args.only.split(","):
        t0 = time.time()
        results[name] = SECTIONS[name](data, args.cache)
        print(f"== {name} ({time.time() - t0:.0f} s)", file=sys.stderr)
        print(json.dumps({name: results[name]}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
