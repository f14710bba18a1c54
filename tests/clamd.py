"""A real ClamAV daemon for tests: Debian's clamd with a signature database built here.

Nothing is downloaded: the database holds our own signatures (../shared/ci-services.md):
`Eicar-Test-Signature` as a body pattern (matches anywhere, also inside large files) and
whole-file SHA-256 signatures tests add. clamd answers with `.UNOFFICIAL` appended to the
names of such signatures. Installed by scripts/setup.sh --test (clamav, clamav-daemon).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.util import free_port

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_FOUND = "Eicar-Test-Signature.UNOFFICIAL"


def clamd_available() -> bool:
    return Path(CLAMD).exists()


class ClamdProcess:
    """clamd in the foreground on a unix socket and a TCP port of 127.0.0.1."""

    def __init__(
        self, stream_max: str = "2000M", sha256_signatures: dict[str, tuple[int, str]] | None = None
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="sbx-clamd-"))
        self.socket = self.root / "clamd.sock"
        self.port = free_port()
        db = self.root / "db"
        (self.root / "tmp").mkdir()
        db.mkdir()
        (db / "shardbox-test.ndb").write_text(f"Eicar-Test-Signature:0:*:{EICAR.hex()}\n")
        if sha256_signatures:
            (db / "shardbox-test.hsb").write_text(
                "".join(f"{digest}:{size}:{name}\n" for digest, (size, name) in sha256_signatures.items())
            )
        self.config = self.root / "clamd.conf"
        self.config.write_text(
            "\n".join(
                [
                    f"DatabaseDirectory {db}",
                    f"LocalSocket {self.socket}",
                    "FixStaleSocket yes",
                    f"TCPSocket {self.port}",
                    "TCPAddr 127.0.0.1",
                    "Foreground yes",
                    f"TemporaryDirectory {self.root / 'tmp'}",
                    "SelfCheck 0",
                    f"StreamMaxLength {stream_max}",
                    f"MaxScanSize {stream_max}",
                    f"MaxFileSize {stream_max}",
                    "AlertExceedsMax yes",
                    "",
                ]
            )
        )
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ClamdProcess:
        log = open(self.root / "clamd.log", "wb")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [CLAMD, "-c", str(self.config)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"clamd exited with {self.proc.returncode}: "
                    f"{(self.root / 'clamd.log').read_text()[-2000:]}"
                )
            if self.ping():
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError("clamd did not answer PING in time")

    def ping(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.socket))
                s.sendall(b"zPING\0")
                return s.recv(16).rstrip(b"\0") == b"PONG"
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
