"""Where the client keeps the server address and the user's API token.

One JSON file in the user's config directory (platformdirs: ~/.config/shardbox on Linux,
or $SHARDBOX_CONFIG_DIR), readable by the user alone: the directory is 0700 and the file
0600 from the moment it exists (written under a 0077 umask, then renamed into place), so
a token is never briefly readable by others.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import platformdirs

FILE_NAME = "credentials.json"


class NotLoggedIn(Exception):
    """No usable credentials: the user has to run `shardbox login URL` first."""


@dataclass(frozen=True)
class Credentials:
    server: str            # gateway base URL, e.g. http://127.0.0.1:9000
    token: str             # bearer token (a long-lived API token made at login)
    user: str
    tenant: str | None = None
    token_id: str | None = None   # to revoke it at logout


def config_dir() -> Path:
    override = os.environ.get("SHARDBOX_CONFIG_DIR")
    return Path(override) if override else Path(platformdirs.user_config_dir("shardbox", appauthor=False))


def state_dir() -> Path:
    """Resumable-upload journal and other non-secret state (not credentials)."""
    override = os.environ.get("SHARDBOX_CONFIG_DIR")
    if override:
        return Path(override) / "state"
    return Path(platformdirs.user_state_dir("shardbox", appauthor=False))


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)


def save(creds: Credentials) -> Path:
    directory = config_dir()
    _private_dir(directory)
    path = directory / FILE_NAME
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    old_umask = os.umask(0o077)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(creds), fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        os.umask(old_umask)
        tmp.unlink(missing_ok=True)
    return path


def load() -> Credentials:
    path = credentials_path()
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotLoggedIn("not logged in: run `shardbox login URL` first") from None
    except (OSError, ValueError) as exc:
        raise NotLoggedIn(f"{path} is unreadable ({exc}): run `shardbox login URL` again") from None
    if path.stat().st_mode & 0o077:
        raise NotLoggedIn(f"{path} is readable by other users: fix with `chmod 600 {path}` "
                          "or log in again")
    if not isinstance(doc, dict) or not doc.get("server") or not doc.get("token"):
        raise NotLoggedIn(f"{path} is not a shardbox credentials file: run `shardbox login URL` again")
    return Credentials(**{k: doc.get(k) for k in ("server", "token", "user", "tenant", "token_id")})


def forget() -> bool:
    path = credentials_path()
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False
