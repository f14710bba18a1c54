"""Which malware scanner `shardbox up` runs: clamd when it finds one, else the built-in one.

clamd is used when `--clamd SOCKET|HOST:PORT` names one (remembered in cluster.json for the
next start) or when Debian's clamav-daemon answers on its default socket. Otherwise the
built-in scanner runs (EICAR + the SHA-256 blocklist in DATA/config/scan-blocklist.txt,
which operators extend). `--scanner none` turns scanning off: new objects are ready at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workers.clamd import Clamd

DEBIAN_SOCKETS = (Path("/run/clamav/clamd.ctl"), Path("/var/run/clamav/clamd.ctl"))
BLOCKLIST = "scan-blocklist.txt"
_BLOCKLIST_HEADER = """\
# SHA-256 digests of files the built-in scanner quarantines, one per line, optionally
# followed by a name for the finding, e.g.:
#   275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f  Eicar-Test-File
# Read again whenever this file changes.
"""


@dataclass
class ScanChoice:
    backend: str                     # clamd | builtin | none
    worker: dict                     # the worker's [worker.scan] section
    description: str                 # what `shardbox up` says on its console


def _clamd(target: str) -> Clamd:
    if target.startswith("/") or target.startswith("."):
        return Clamd(socket_path=Path(target))
    return Clamd(address=target)


async def choose_scanner(mode: str, clamd: str | None, config_dir: Path) -> ScanChoice:
    """mode: auto | clamd | builtin | none; clamd: a socket path or HOST:PORT, if given."""
    if mode == "none":
        return ScanChoice("none", {"backend": "none"}, "none (new objects are ready at once)")
    if mode in ("auto", "clamd"):
        candidates = [_clamd(clamd)] if clamd else [Clamd(socket_path=p) for p in DEBIAN_SOCKETS]
        for c in candidates:
            if await c.available():
                section = {"backend": "clamd"}
                if c.socket_path is not None:
                    section["clamd_socket"] = str(c.socket_path)
                else:
                    section["clamd_address"] = c.address
                return ScanChoice("clamd", section, f"{c.name} at {c.where()}")
        if mode == "clamd":
            where = clamd or " or ".join(str(p) for p in DEBIAN_SOCKETS)
            raise RuntimeError(f"--scanner clamd: no clamd answers at {where}")
    blocklist = config_dir / BLOCKLIST
    if not blocklist.exists():
        blocklist.write_text(_BLOCKLIST_HEADER)
    return ScanChoice("builtin", {"backend": "builtin", "blocklist": str(blocklist.resolve())},
                      f"builtin (EICAR + SHA-256 blocklist {blocklist})")
