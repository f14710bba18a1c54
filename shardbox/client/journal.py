"""The resume journal: which upload session a half-sent file belongs to.

A session id is written here as soon as init answers, and removed at finalize or abort,
so a client killed mid-upload finds its session again when started with the same file and
destination, asks the server which chunks landed and sends only the others. The key is
the server, the user, the remote path and the file's content hash: the same bytes going
to the same place resume; anything else starts a new session. Files are small JSON
documents in the user's state directory, written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from shardbox.client.credentials import state_dir


@dataclass(frozen=True)
class JournalEntry:
    upload_id: str
    remote_path: str
    local_path: str
    size: int
    chunk_size: int
    created_at: float


def _dir() -> Path:
    return state_dir() / "uploads"


def journal_key(server: str, user: str, remote_path: str, content_hash: str, chunk_size: int) -> str:
    raw = "\n".join([server, user, remote_path, content_hash, str(chunk_size)])
    return hashlib.sha256(raw.encode()).hexdigest()[:40]


def find(key: str) -> JournalEntry | None:
    try:
        doc = json.loads((_dir() / f"{key}.json").read_text())
        return JournalEntry(**doc)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def record(key: str, entry: JournalEntry) -> None:
    directory = _dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / f"{key}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(asdict(entry)))
    os.replace(tmp, path)


def forget(key: str) -> None:
    (_dir() / f"{key}.json").unlink(missing_ok=True)


def new_entry(upload_id: str, remote_path: str, local_path: Path, size: int, chunk_size: int) -> JournalEntry:
    return JournalEntry(upload_id=upload_id, remote_path=remote_path, local_path=str(local_path.resolve()),
                        size=size, chunk_size=chunk_size, created_at=time.time())
