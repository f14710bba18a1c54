"""Hashers: known check values, agreement with hashlib/awscrt, incremental == one shot."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import zlib

import pytest
from awscrt import checksums as crt
from hypothesis import given, settings
from hypothesis import strategies as st

from blob import SUPPORTED_CHECKSUMS, MultiHasher, UnsupportedChecksum, checksum_b64


def b64int(value: int, width: int) -> str:
    return base64.b64encode(value.to_bytes(width, "big")).decode()


def test_check_values_of_123456789():
    """The standard CRC catalogue check values, in S3's base64 big-endian form."""
    data = b"123456789"
    assert checksum_b64("crc32", data) == b64int(0xCBF43926, 4)
    assert checksum_b64("crc32c", data) == b64int(0xE3069283, 4)
    assert checksum_b64("crc64nvme", data) == b64int(0xAE8B14860A799888, 8)
    assert checksum_b64("sha1", data) == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert checksum_b64("sha256", data) == base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_empty_payload_values():
    # What S3 returns for a 0-byte object.
    assert checksum_b64("crc32", b"") == "AAAAAA=="
    assert checksum_b64("crc32c", b"") == "AAAAAA=="
    assert checksum_b64("crc64nvme", b"") == "AAAAAAAAAAA="
    assert checksum_b64("sha256", b"") == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def test_multihasher_incremental_matches_libraries():
    data = os.urandom(3 * 1024 * 1024 + 7)
    h = MultiHasher(set(SUPPORTED_CHECKSUMS) | {"md5"})
    view = memoryview(data)
    for start in range(0, len(data), 1_000_003):
        h.update(view[start:start + 1_000_003])
    out = h.results()
    assert out["crc32"] == b64int(zlib.crc32(data), 4)
    assert out["crc32c"] == b64int(crt.crc32c(data), 4)
    assert out["crc64nvme"] == b64int(crt.crc64nvme(data), 8)
    assert out["sha1"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert out["sha256"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert h.hexdigest("md5") == hashlib.md5(data).hexdigest()
    assert h.algorithms == frozenset(SUPPORTED_CHECKSUMS) | {"md5"}


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=5000), cuts=st.lists(st.integers(0, 5000), max_size=6),
       kind=st.sampled_from(["bytes", "bytearray", "memoryview"]))
def test_crc32_over_any_split_equals_zlib(data: bytes, cuts: list[int], kind: str):
    """CRC32 runs on ISA-L, whose short-buffer and unaligned paths differ from its bulk
    loop; whatever pieces a body arrives in, the value must be zlib's (S3's) CRC32."""
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    h = MultiHasher({"crc32"})
    for a, b in itertools.pairwise(bounds):
        piece = data[a:b]
        h.update({"bytes": piece, "bytearray": bytearray(piece), "memoryview": memoryview(data)[a:b]}[kind])
    assert h.results()["crc32"] == b64int(zlib.crc32(data), 4)


def test_unknown_algorithm_is_refused():
    with pytest.raises(UnsupportedChecksum):
        MultiHasher({"crc16"})
    assert issubclass(UnsupportedChecksum, ValueError)
