"""Small files that hold secrets (keys, peppers): created once with mode 0600, read with a warning if exposed.

Creation writes to a temporary name and hard-links it into place, so that two
processes starting at once (the CLI and the service) agree on one file: the
loser of the race reads the winner's file instead of overwriting it.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger("voiceprints.secrets")


class PrivateFileError(Exception):
    """The file cannot be read as text; the message names it (never its content)."""


def read_private_text(path: Path, what: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except OSError as exc:
        raise PrivateFileError(f"{what} {path} cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise PrivateFileError(f"{what} {path} is not a text file") from None
    if mode & 0o077:
        log.warning("%s %s is readable by other users (mode %o); chmod 600 it", what, path, mode & 0o777)
    return text


def create_private_text(path: Path, text: str) -> bool:
    """Write ``text`` to a new 0600 file at ``path``; False (nothing written) if another process won the race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
    finally:
        tmp.unlink(missing_ok=True)
    return True


def ensure_private_dir(path: Path) -> None:
    """Create the data directory 0700, or tighten an existing one: it holds keys and the embedded database."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    stat = path.stat()
    mode = stat.st_mode & 0o777
    # Never tighten a shared directory someone pointed the data dir at (/tmp has the sticky bit).
    if mode & 0o077 and not stat.st_mode & 0o1000 and path.owner() == _me():
        path.chmod(mode & 0o700)
        log.warning("data directory %s was open to other users (mode %o); set to %o", path, mode, mode & 0o700)


def ensure_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if it does not exist (SQLite then keeps that mode for its
    -wal and -shm files); tighten an existing one."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077 and path.owner() == _me():
            path.chmod(0o600)
            log.warning("%s was readable by other users (mode %o); set to 600", path, mode)


def _me() -> str:
    import getpass

    return getpass.getuser()
