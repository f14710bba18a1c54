"""Incremental hashers for everything the gateway must compute over a payload.

S3 wants the object's MD5 (the ETag), the full-payload SHA-256 (to check a signed
`x-amz-content-sha256`) and any `x-amz-checksum-*` the client asked for, all in one pass
over a stream that is never held whole. `MultiHasher` updates a set of them on each
buffer. Every backend here is C code that releases the GIL on large buffers (hashlib
above 2 KiB, python-isal's crc32, awscrt's crc32c/crc64nvme), so the writer runs hashers
in worker threads, overlapped with encryption, erasure coding and network I/O.

Values come out the way S3 returns them: CRCs as base64 of the big-endian integer,
SHA-1/SHA-256 (and MD5) as base64 of the digest.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from typing import Protocol

from awscrt import checksums as _crt
from isal import isal_zlib

Buffer = bytes | bytearray | memoryview

#: The S3 `x-amz-checksum-*` algorithms, by the lower-case name used in headers and records.
SUPPORTED_CHECKSUMS: frozenset[str] = frozenset({"crc32", "crc32c", "crc64nvme", "sha1", "sha256"})
#: Also accepted by MultiHasher (not an S3 checksum, but computed the same way).
EXTRA_ALGORITHMS: frozenset[str] = frozenset({"md5"})


class UnsupportedChecksum(ValueError):
    """An algorithm name MultiHasher does not know."""


class Hasher(Protocol):
    def update(self, data: Buffer) -> None: ...
    def digest(self) -> bytes: ...


class _Crc:
    """A running CRC kept as an int; `digest()` is the big-endian value S3 encodes."""

    def __init__(self, func, width_bytes: int) -> None:
        self._func = func
        self._width = width_bytes
        self._value = 0

    def update(self, data: Buffer) -> None:
        self._value = self._func(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def new_hasher(algorithm: str) -> Hasher:
    """A fresh incremental hasher for one algorithm name."""
    if algorithm == "crc32":
        # ISA-L's CRC32 (zlib's polynomial, which S3 uses) runs on carry-less multiply:
        # ~30 GB/s here against 4-5 for zlib and 3 for awscrt. botocore sends a CRC32 with
        # every upload by default, so this was ~7% of the gateway's CPU per PUT.
        return _Crc(isal_zlib.crc32, 4)
    if algorithm == "crc32c":
        return _Crc(_crt.crc32c, 4)
    if algorithm == "crc64nvme":
        return _Crc(_crt.crc64nvme, 8)
    if algorithm in ("sha1", "sha256", "md5"):
        return hashlib.new(algorithm)
    raise UnsupportedChecksum(f"unsupported checksum algorithm {algorithm!r}")


def sha256_hex(data: Buffer) -> str:
    """A chunk's id: the hex SHA-256 of its plaintext."""
    return hashlib.sha256(data).hexdigest()


def checksum_b64(algorithm: str, data: Buffer) -> str:
    """One-shot checksum of a buffer, base64 as S3 shows it."""
    h = new_hasher(algorithm)
    h.update(data)
    return base64.b64encode(h.digest()).decode("ascii")


class MultiHasher:
    """Updates several hashers with each buffer; not thread-safe (one thread at a time)."""

    def __init__(self, algorithms: Iterable[str]) -> None:
        names = sorted(set(algorithms))
        for name in names:
            if name not in SUPPORTED_CHECKSUMS and name not in EXTRA_ALGORITHMS:
                raise UnsupportedChecksum(f"unsupported checksum algorithm {name!r}")
        self._hashers: dict[str, Hasher] = {name: new_hasher(name) for name in names}

    @property
    def algorithms(self) -> frozenset[str]:
        return frozenset(self._hashers)

    def update(self, data: Buffer) -> None:
        for hasher in self._hashers.values():
            hasher.update(data)

    def digest(self, algorithm: str) -> bytes:
        return self._hashers[algorithm].digest()

    def hexdigest(self, algorithm: str) -> str:
        return self.digest(algorithm).hex()

    def results(self) -> dict[str, str]:
        """algorithm -> base64 value, as S3 returns it in `x-amz-checksum-*`."""
        return {name: base64.b64encode(h.digest()).decode("ascii") for name, h in self._hashers.items()}
