"""Prompts as Twilio plays them: 20 ms frames of base64 μ-law, encoded once per prompt and language."""

from __future__ import annotations

import base64

from ivr.prompts.sources import PromptSource
from ivr.transports.twilio import wire


class PromptFrames:
    def __init__(self, source: PromptSource) -> None:
        self._source = source
        self._cache: dict[tuple[str, str], list[str] | None] = {}

    async def frames(self, name: str, language: str) -> list[str] | None:
        key = (language, name)
        if key not in self._cache:
            pcm = await self._source.audio(name, language)
            self._cache[key] = None if pcm is None else _frames(wire.pcm16_to_ulaw(pcm))
        return self._cache[key]


def _frames(ulaw: bytes) -> list[str]:
    if len(ulaw) % wire.FRAME_BYTES:
        ulaw += b"\xff" * (wire.FRAME_BYTES - len(ulaw) % wire.FRAME_BYTES)  # 0xFF: μ-law silence
    return [base64.b64encode(ulaw[i:i + wire.FRAME_BYTES]).decode("ascii")
            for i in range(0, len(ulaw), wire.FRAME_BYTES)]
