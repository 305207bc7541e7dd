"""AsyncEmbedder: inference off the event loop, bounded, same vectors as the synchronous embedder."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding import AsyncEmbedder, Ge2eEmbedder


@pytest.fixture(scope="module")
def ge2e() -> Ge2eEmbedder:
    embedder = Ge2eEmbedder()
    embedder.embed(AudioClip(np.zeros(16000, dtype=np.float32), 16000))  # pay the lazy first-call cost here
    return embedder


@pytest.fixture(scope="module")
def long_clip(utterances_of) -> AudioClip:
    # ~4 x 6 s of speech: one inference takes long enough to see a stalled loop.
    return AudioClip.concatenate(utterances_of("carol", 4))


class ConcurrencyProbe:
    """The real embedder, counting how many inferences run at the same moment."""

    def __init__(self, embedder: Ge2eEmbedder) -> None:
        self._embedder = embedder
        self._lock = threading.Lock()
        self.running = 0
        self.peak = 0
        self.calls = 0
        self.model_id, self.dim = embedder.model_id, embedder.dim

    def embed(self, clip: AudioClip) -> np.ndarray:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            time.sleep(0.05)  # keep calls overlapping even on a busy machine
            return self._embedder.embed(clip)
        finally:
            with self._lock:
                self.running -= 1

    def embed_batch(self, clips):
        return np.stack([self.embed(c) for c in clips])


async def test_concurrent_embeds_give_the_synchronous_vectors(ge2e, utterances_of):
    clips = utterances_of("alice", 2) + utterances_of("bob", 2)
    async with AsyncEmbedder(ge2e, max_workers=2) as runner:
        vectors = await asyncio.gather(*(runner.embed(c) for c in clips))
        batch = await runner.embed_batch(clips)
    for clip, vector, row in zip(clips, vectors, batch):
        expected = ge2e.embed(clip)
        np.testing.assert_allclose(vector, expected, atol=1e-6)
        np.testing.assert_allclose(row, expected, atol=1e-5)


async def test_event_loop_keeps_ticking_while_four_embeds_run(ge2e, long_clip):
    started = time.perf_counter()
    ge2e.embed(long_clip)
    one_inference = time.perf_counter() - started
    assert one_inference > 0.1, "clip too short to tell a stalled loop from a busy one"

    ticks: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        for _ in range(10_000):  # bounded; stops long before this
            ticks.append(time.perf_counter())
            if stop.is_set():
                return
            await asyncio.sleep(0.005)

    runner = AsyncEmbedder(ge2e, max_workers=2)
    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.wait_for(asyncio.gather(*(runner.embed(long_clip) for _ in range(4))), timeout=120)
    finally:
        stop.set()
        await ticking
        await runner.aclose()
    gaps = np.diff(ticks)
    # Run on the loop, each embed would freeze it for a whole inference.
    assert len(ticks) > 10
    assert gaps.max() < one_inference / 2, (gaps.max(), one_inference)


async def test_no_more_than_max_workers_inferences_run_at_once(ge2e, utterances_of):
    probe = ConcurrencyProbe(ge2e)
    clip = utterances_of("dave", 1)[0]
    async with AsyncEmbedder(probe, max_workers=2) as runner:
        await asyncio.wait_for(asyncio.gather(*(runner.embed(clip) for _ in range(6))), timeout=60)
    assert probe.peak == 2


async def test_one_worker_serialises_inference(ge2e, utterances_of):
    probe = ConcurrencyProbe(ge2e)
    clip = utterances_of("dave", 1)[0]
    async with AsyncEmbedder(probe, max_workers=1) as runner:
        await asyncio.wait_for(asyncio.gather(*(runner.embed(clip) for _ in range(3))), timeout=60)
    assert probe.peak == 1


async def test_a_cancelled_waiting_request_never_runs(ge2e, utterances_of):
    """A caller that hangs up while queued must not leave an inference behind it."""
    probe = ConcurrencyProbe(ge2e)
    clip = utterances_of("dave", 1)[0]
    async with AsyncEmbedder(probe, max_workers=1) as runner:
        first = asyncio.create_task(runner.embed(clip))
        queued = asyncio.create_task(runner.embed(clip))
        await asyncio.sleep(0.01)  # both started; the second waits for the only worker
        queued.cancel()
        await asyncio.wait_for(first, timeout=30)
        with pytest.raises(asyncio.CancelledError):
            await queued
        await runner.embed(clip)
    assert probe.calls == 2


async def test_warm_up_runs_one_inference_and_model_details_pass_through(ge2e):
    probe = ConcurrencyProbe(ge2e)
    async with AsyncEmbedder(probe) as runner:
        await runner.warm_up()
        assert probe.peak == 1
        assert runner.model_id == ge2e.model_id
        assert runner.dim == 256
        assert runner.embedder is probe


async def test_closed_runner_refuses_new_work(ge2e, utterances_of):
    runner = AsyncEmbedder(ge2e)
    runner.close()
    with pytest.raises(RuntimeError, match="closed"):
        await runner.embed(utterances_of("alice", 1)[0])


async def test_errors_from_the_model_reach_the_caller(ge2e):
    from voiceprints.errors import EmptyAudioError

    async with AsyncEmbedder(ge2e) as runner:
        with pytest.raises(EmptyAudioError):
            await runner.embed(AudioClip(np.zeros(0, dtype=np.float32), 16000))


def test_max_workers_below_one_is_refused(ge2e):
    with pytest.raises(ValueError, match="max_workers"):
        AsyncEmbedder(ge2e, max_workers=0)
