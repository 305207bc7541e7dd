"""What commands share: the settings, the engine and the IVR database opened once on first use, and the audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ivr.settings import Settings

if TYPE_CHECKING:
    from ivr.audit.log import AuditLog
    from ivr.notices import NoticeKind
    from ivr.db.engine import Database
    from ivr.secrets import ServerSecrets
    from voiceprints.engine import VoiceprintEngine
    from voiceprints.store.sql import SqlVoiceprintStore


class DatabaseUnavailableError(Exception):
    code = "database_unavailable"


@dataclass
class CliContext:
    settings: Settings
    _engine: "VoiceprintEngine | None" = field(default=None, repr=False)
    _store: "SqlVoiceprintStore | None" = field(default=None, repr=False)
    _db: "Database | None" = field(default=None, repr=False)

    def store(self) -> "SqlVoiceprintStore":
        """The store alone, for commands that need no model (listing, deletion, key rotation)."""
        if self._store is None:
            from ivr.sharing import check_shared_setup
            from voiceprints.store.sql import open_store

            check_shared_setup(self.settings)  # before anything is opened or written
            self._store = open_store(self.settings.core())
        return self._store

    def engine(self) -> "VoiceprintEngine":
        if self._engine is None:
            from voiceprints.embedding.select import load_embedder
            from voiceprints.engine import VoiceprintEngine

            core = self.settings.core()
            self._engine = VoiceprintEngine(load_embedder(core.model), self.store(), core)
        return self._engine

    def database(self) -> "Database":
        """The IVR database (the voiceprint store's database unless configured otherwise), migrated."""
        if self._db is None:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import SQLAlchemyError

            from ivr.db.engine import open_database

            url = self.settings.core().database_url()
            parsed = make_url(url)
            if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
                from voiceprints.private_files import ensure_private_dir

                if Path(parsed.database).parent == self.settings.data_dir:
                    ensure_private_dir(self.settings.data_dir)
            try:
                self._db = open_database(url)
            except SQLAlchemyError as exc:
                reason = str(getattr(exc, "orig", exc) or exc).strip().splitlines()[0][:200]
                raise DatabaseUnavailableError(
                    f"cannot open the IVR database {parsed.render_as_string(hide_password=True)}: {reason} "
                    "(check VOICEAUTH_STORE__URL and that the database server is running)"
                ) from None
            try:
                from ivr.sharing import check_shared_setup

                check_shared_setup(self.settings)  # before any command writes to a shared database
            except Exception:
                self._db.dispose()
                self._db = None
                raise
        return self._db

    def secrets(self) -> "ServerSecrets":
        from ivr.secrets import load_server_secrets
        from ivr.sharing import shared_store_of

        return load_server_secrets(self.settings.secrets, self.settings.data_dir,
                                   shared_store=shared_store_of(self.settings))

    def audit_log(self) -> "AuditLog":
        from ivr.audit.log import AuditLog

        return AuditLog(self.database(), key=self.secrets().audit_key)

    def audit(self, flow: str, identity: str | None, reason: str, *, caller_hash: str | None = None,
              result: str = "OK") -> None:
        """One audit row for an admin action: who is not known to the engine, so ``call_id`` says "cli"."""
        from ivr.audit.log import AuditEntry

        self.audit_log().record(AuditEntry(flow=flow, result=result, identity=identity, caller_hash=caller_hash,
                                           reason=reason, call_id="cli"))

    def notify(self, account: str, kind: "NoticeKind") -> str:
        """Tell the customer on the contact on file (if a channel is configured); returns what happened."""
        import asyncio

        from ivr.db.customers import CustomerDirectory
        from ivr.notices import CustomerNotifier
        from ivr.otp.build import build_senders

        senders = build_senders(self.settings.otp)
        if not senders:
            return "no notice: no e-mail or SMS channel is configured"
        customer = CustomerDirectory(self.database()).get(account)
        notifier = CustomerNotifier(senders, self.audit_log())  # type: ignore[arg-type]
        return asyncio.run(notifier.notify(customer, kind, call_id="cli")).detail

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


def ctx_of(ctx: typer.Context) -> CliContext:
    return ctx.obj  # type: ignore[no-any-return]
