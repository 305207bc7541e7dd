"""The manifest of a bulk enrolment: one row per account, its call recordings, the caller's channel.

    account,files,channel
    700123,calls/700123-a.wav;calls/700123-b.wav,left
    700124,calls/700124.wav,

``files`` are separated by ``;`` and relative to the manifest's folder
unless absolute. ``channel`` (optional) says which side of a stereo
recording is the caller: ``left``/``1`` or ``right``/``2``; empty for mono
recordings. It is 1-based on purpose, as sox and audio editors count:
taking the agent's side would enrol the agent's voice as the customer's.
A row that cannot be used is kept with its problem, so the run reports it
and goes on; a file that is not a manifest at all is refused as a whole.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ivr.db.models_policy import SUBJECT_LEN

REQUIRED = ("account", "files")
CHANNELS: dict[str, int | None] = {"": None, "left": 0, "1": 0, "right": 1, "2": 1}
FILE_SEPARATOR = ";"


class ManifestError(Exception):
    """The file cannot be read as a manifest (missing, not UTF-8, no account/files columns)."""

    code = "bad_manifest"


@dataclass(frozen=True)
class ManifestRow:
    line: int  # line in the file, for messages an admin can find
    account: str
    files: tuple[Path, ...]
    channel: int | None  # 0 left, 1 right; None: mono (or both channels the same)
    problem: str | None = None  # why this row cannot be enrolled, found while reading


@dataclass(frozen=True)
class Manifest:
    path: Path
    rows: tuple[ManifestRow, ...]
    sha256: str  # of the file's bytes: a progress file belongs to exactly this manifest


def read_manifest(path: Path) -> Manifest:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ManifestError(f"manifest {path} cannot be read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")  # Excel writes a byte-order mark
    except UnicodeDecodeError:
        raise ManifestError(f"manifest {path} is not UTF-8 text") from None
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise ManifestError(
            f"manifest {path} has no {' or '.join(repr(c) for c in missing)} column; the first line must "
            "name the columns: account,files[,channel]"
        )
    base = Path(path).parent
    rows: list[ManifestRow] = []
    first_line: dict[str, int] = {}
    for raw in reader:
        fields = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        rows.append(_row(reader.line_num, fields, base, first_line))
    return Manifest(Path(path), tuple(rows), hashlib.sha256(data).hexdigest())


def _row(line: int, fields: dict[str, str], base: Path, first_line: dict[str, int]) -> ManifestRow:
    account = fields.get("account", "")
    files = tuple(_resolve(base, f.strip()) for f in fields.get("files", "").split(FILE_SEPARATOR) if f.strip())
    channel_text = fields.get("channel", "").lower()
    channel = CHANNELS.get(channel_text)
    problem = None
    if not account:
        problem = "no account"
    elif len(account) > SUBJECT_LEN:
        problem = f"account is {len(account)} characters long; at most {SUBJECT_LEN}"
    elif account in first_line:
        problem = f"account {account} is already on line {first_line[account]}; one row per account"
    elif not files:
        problem = "no recordings in the files column"
    elif channel_text not in CHANNELS:
        problem = f"channel {channel_text!r} is not left, right, 1 or 2 (leave it empty for mono recordings)"
    if account and account not in first_line:
        first_line[account] = line
    return ManifestRow(line, account, files, channel, problem)


def _resolve(base: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else base / path
