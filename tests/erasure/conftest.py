"""Fixtures for the erasure tests: a codec per kernel, and reedsolo as the oracle."""

from __future__ import annotations

import os

import pytest
import reedsolo

import erasure


@pytest.fixture(params=erasure.KERNEL_NAMES)
def codec(request: pytest.FixtureRequest) -> erasure.Codec:
    """Every test taking `codec` runs once per kernel."""
    try:
        return erasure.codec(request.param)
    except erasure.KernelUnavailable as exc:
        pytest.skip(f"kernel {request.param} unavailable here: {exc}")


def reference_shards(data: bytes) -> list[bytes]:
    """The 14 shards as the contract defines them, computed with reedsolo column by column.

    reedsolo runs at ~1 MB/s: keep inputs to a few KiB.
    """
    rs = reedsolo.RSCodec(4)
    n = erasure.shard_size(len(data))
    padded = data + bytes(n * erasure.DATA - len(data))
    shards = [bytearray(n) for _ in range(erasure.TOTAL)]
    for k in range(n):
        coded = rs.encode(padded[k * erasure.DATA : (k + 1) * erasure.DATA])
        assert len(coded) == erasure.TOTAL
        for i in range(erasure.TOTAL):
            shards[i][k] = coded[i]
    return [bytes(s) for s in shards]


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (os.urandom would make failures unreproducible)."""
    import random

    return random.Random(seed).randbytes(size) if size else b""


@pytest.fixture(scope="session")
def big_data() -> bytes:
    """A bit over 8 MiB (the gateway's chunk size), not a multiple of 10."""
    return os.urandom(8 * 1024 * 1024 + 13)
