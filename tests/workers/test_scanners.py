"""The scanners on their own: the built-in one (EICAR anywhere, the operator's blocklist) and a
real clamd over INSTREAM (unix socket and TCP), including its size limit and its absence."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.clamd import EICAR, EICAR_FOUND, ClamdProcess, clamd_available
from workers.builtin_scan import BuiltinScanner, parse_blocklist
from workers.clamd import Clamd
from workers.verdict import ScannerUnavailable, Verdict


async def pieces(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture(scope="module")
def clamd() -> Iterator[ClamdProcess]:
    if not clamd_available():
        pytest.fail("clamd is not installed (scripts/setup.sh --test installs clamav-daemon)")
    proc = ClamdProcess().start()
    try:
        yield proc
    finally:
        proc.cleanup()


def test_verdicts_become_status_and_result():
    assert (Verdict("clean").status("ready"), Verdict("clean").result()) == ("ready", "clean")
    infected = Verdict("infected", signature="Eicar-Test-Signature")
    assert (infected.status("ready"), infected.result()) == ("quarantined", "infected: Eicar-Test-Signature")
    big = Verdict("too_large", detail="clamd StreamMaxLength")
    assert big.result() == "unscanned: too large (clamd StreamMaxLength)"
    assert (big.status("ready"), big.status("quarantine")) == ("ready", "quarantined")


async def test_builtin_finds_eicar_anywhere_even_across_pieces():
    scanner = BuiltinScanner()
    data = os.urandom(3 << 20)
    at = (1 << 20) - 30  # straddles the boundary of two 1 MiB pieces
    infected = data[:at] + EICAR + data[at:]
    got = await scanner.scan(pieces(infected, 1 << 20), len(infected))
    assert (got.outcome, got.signature) == ("infected", "Eicar-Test-Signature")
    assert (await scanner.scan(pieces(EICAR, 7), len(EICAR))).outcome == "infected"
    clean = await scanner.scan(pieces(data, 1 << 20), len(data))
    assert clean.outcome == "clean" and clean.scanner.startswith("builtin")


async def test_builtin_blocklist_is_read_again_when_the_operator_changes_it(tmp_path):
    blocklist = tmp_path / "blocklist.txt"
    scanner = BuiltinScanner(blocklist)
    data = b"an installer that later turned out to be bad" * 1000
    assert (await scanner.scan(pieces(data, 4096), len(data))).outcome == "clean"  # no file yet: clean
    digest = hashlib.sha256(data).hexdigest()
    blocklist.write_text(f"# known bad\n{digest.upper()}  Trojan.Fake-Installer\n")
    got = await scanner.scan(pieces(data, 4096), len(data))
    assert (got.outcome, got.signature) == ("infected", "Trojan.Fake-Installer")
    st = blocklist.stat()
    blocklist.write_text("not a digest\n")  # a broken edit keeps what was loaded
    os.utime(blocklist, (st.st_atime, st.st_mtime + 5))
    assert (await scanner.scan(pieces(data, 4096), len(data))).outcome == "infected"
    with pytest.raises(ValueError, match="line 2"):
        parse_blocklist(f"{digest}\nnot a digest\n")
    assert parse_blocklist(f"{digest}\n") == {digest: f"Blocklist.Sha256.{digest[:12]}"}


async def test_clamd_finds_eicar_inside_a_large_stream_over_unix_and_tcp(clamd):
    data = bytearray(os.urandom(24 << 20))
    data[17 << 20 : (17 << 20) + len(EICAR)] = EICAR
    for scanner in (Clamd(socket_path=clamd.socket), Clamd(address=clamd.address)):
        assert await scanner.available()
        assert scanner.name.startswith("clamd ClamAV ")
        got = await scanner.scan(pieces(bytes(data), 8 << 20), len(data))
        assert (got.outcome, got.signature, got.result()) == (
            "infected",
            EICAR_FOUND,
            f"infected: {EICAR_FOUND}",
        )
    clean = await Clamd(socket_path=clamd.socket).scan(pieces(os.urandom(3 << 20), 1 << 20), 3 << 20)
    assert clean.outcome == "clean"
    empty = await Clamd(socket_path=clamd.socket).scan(pieces(b"", 1), 0)
    assert empty.outcome == "clean"


async def test_clamd_size_limit_is_said_never_a_silent_pass():
    small = ClamdProcess(stream_max="1M").start()
    try:
        scanner = Clamd(socket_path=small.socket)
        data = os.urandom(5 << 20)
        got = await scanner.scan(pieces(data, 1 << 20), len(data))
        assert got.outcome == "too_large" and got.result().startswith("unscanned: too large")
        assert got.status("ready") == "ready" and got.status("quarantine") == "quarantined"
    finally:
        small.cleanup()


async def test_a_missing_clamd_is_unavailable_not_clean(tmp_path):
    scanner = Clamd(socket_path=tmp_path / "nothing.sock")
    assert await scanner.available() is False
    with pytest.raises(ScannerUnavailable):
        await scanner.scan(pieces(b"x" * 100, 10), 100)
