"""What commands share: the settings, and the engine opened once on first use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import typer

from ivr.settings import Settings

if TYPE_CHECKING:
    from voiceprints.engine import VoiceprintEngine
    from voiceprints.store.sql import SqlVoiceprintStore


@dataclass
class CliContext:
    settings: Settings
    _engine: "VoiceprintEngine | None" = field(default=None, repr=False)
    _store: "SqlVoiceprintStore | None" = field(default=None, repr=False)

    def store(self) -> "SqlVoiceprintStore":
        """The store alone, for commands that need no model (listing, deletion, key rotation)."""
        if self._store is None:
            from voiceprints.store.sql import open_store

            self._store = open_store(self.settings.core())
        return self._store

    def engine(self) -> "VoiceprintEngine":
        if self._engine is None:
            from voiceprints.embedding.select import load_embedder
            from voiceprints.engine import VoiceprintEngine

            core = self.settings.core()
            self._engine = VoiceprintEngine(load_embedder(core.model), self.store(), core)
        return self._engine


def ctx_of(ctx: typer.Context) -> CliContext:
    return ctx.obj  # type: ignore[no-any-return]
