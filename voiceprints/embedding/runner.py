"""Running a synchronous embedder from asyncio without stalling the event loop."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from voiceprints.audio.clip import AudioClip
from voiceprints.embedding.base import Embedder


class AsyncEmbedder:
    """Inference in a small thread pool, at most ``max_workers`` at a time.

    Threads work because torch and librosa release the GIL during the heavy
    numerics, so the event loop keeps serving calls meanwhile. The semaphore
    keeps waiting requests in asyncio, in arrival order, rather than as a
    backlog in the executor's queue: a caller that hangs up simply stops
    waiting, and ``close`` never has a queue of stale work to cancel.
    """

    def __init__(self, embedder: Embedder, max_workers: int = 2) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self._embedder = embedder
        self._max_workers = max_workers
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="embed")
        self._slots = asyncio.Semaphore(max_workers)
        self._closed = False

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    @property
    def dim(self) -> int:
        return self._embedder.dim

    @property
    def max_workers(self) -> int:
        return self._max_workers

    async def embed(self, clip: AudioClip) -> np.ndarray:
        return await self._run(self._embedder.embed, clip)

    async def embed_batch(self, clips: Sequence[AudioClip]) -> np.ndarray:
        return await self._run(self._embedder.embed_batch, list(clips))

    async def warm_up(self) -> None:
        """One throw-away inference: the first one pays for lazy initialisation (seconds), not a caller."""
        rng = np.random.default_rng(0)
        # 2 s of quiet noise: long enough for every model's minimum length.
        await self.embed(AudioClip((rng.standard_normal(32000) * 0.05).astype(np.float32), 16000))

    async def _run(self, fn, arg):  # type: ignore[no-untyped-def]
        if self._closed:
            raise RuntimeError("the embedder has been closed")
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, arg)

    def close(self) -> None:
        """Refuse new work; wait for running inferences (at most ``max_workers``, each well under 1 s)."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        """``close`` without blocking the event loop while running inferences finish."""
        self._closed = True
        await asyncio.to_thread(self._pool.shutdown, True, cancel_futures=True)

    async def __aenter__(self) -> "AsyncEmbedder":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
