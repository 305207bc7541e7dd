"""Several workers, one database: the keys and secrets every host must hold, the same everywhere.

On SQLite (one host) the data directory generates a voiceprint key and the
server secrets on first use. On a database that several hosts share
(PostgreSQL), each host generating its own would split the data: worker B
could not decrypt what A enrolled, knowledge answers imported through A
would fail on B, caller-number hashes and limits would differ per host, and
the audit chain would not verify. So there they must be configured
explicitly, and this check names every setting missing, before anything is
opened or written. The generators themselves refuse as well
(``KeyRing.from_env_or_file`` and ``load_server_secrets`` with
``shared_store``): this check only makes the first message complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ivr.secrets import DEFAULT_SECRETS_FILE, SharedSecretsNotConfiguredError, unconfigured_secrets
from voiceprints.errors import SharedKeysNotConfiguredError
from voiceprints.store.crypto import DEFAULT_KEY_FILE_NAME

if TYPE_CHECKING:
    from ivr.settings import Settings


def shared_store_of(settings: "Settings") -> str | None:
    """The display URL of the configured database when other hosts can share it (not SQLite), else None."""
    from voiceprints.store.sql import shared_store

    return shared_store(settings.core().database_url())


def check_shared_setup(settings: "Settings", environ: Mapping[str, str] | None = None) -> None:
    """Raise, naming every missing setting, when a shared database would get per-host keys or secrets."""
    store = shared_store_of(settings)
    if store is None:
        return
    env = os.environ if environ is None else environ
    data_dir = Path(settings.data_dir)
    needed: list[str] = []
    notes: list[str] = []
    keys_missing = not env.get(settings.store.key_env, "").strip() and settings.store.key_file is None
    if keys_missing:
        needed.append(f"{settings.store.key_env} or VOICEAUTH_STORE__KEY_FILE")
        if (data_dir / DEFAULT_KEY_FILE_NAME).exists():
            notes.append(f"{data_dir / DEFAULT_KEY_FILE_NAME} was generated on this host earlier: if the stored "
                         "voiceprints were written with it, copy it to every host and point "
                         "VOICEAUTH_STORE__KEY_FILE at it")
    missing = unconfigured_secrets(settings.secrets)
    if missing:
        needed.append("VOICEAUTH_SECRETS__FILE or " + ", ".join(f"VOICEAUTH_SECRETS__{n.upper()}" for n in missing))
        if (data_dir / DEFAULT_SECRETS_FILE).exists():
            notes.append(f"{data_dir / DEFAULT_SECRETS_FILE} was generated on this host earlier: if other hosts "
                         "use the same one, copy it to every host and point VOICEAUTH_SECRETS__FILE at it")
    if not needed:
        return
    message = (
        f"the database {store} is shared by every worker, so the voiceprint keys and server secrets must be "
        f"the same on every host and are not generated here; set on every host: {'; and '.join(needed)} "
        f"(`ivr keys generate` prints fresh values; see docs/deploy.md)" + "".join(f". Note: {n}" for n in notes)
    )
    raise (SharedKeysNotConfiguredError if keys_missing else SharedSecretsNotConfiguredError)(message)
