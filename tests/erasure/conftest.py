"""Fixtures for the erasure tests: a codec per kernel, both layouts, and reedsolo as the oracle."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import reedsolo

import erasure
from erasure import interleaved


@pytest.fixture(params=erasure.KERNEL_NAMES)
def codec(request: pytest.FixtureRequest) -> erasure.Codec:
    """Every test taking `codec` runs once per kernel."""
    try:
        return erasure.codec(request.param)
    except erasure.KernelUnavailable as exc:
        pytest.skip(f"kernel {request.param} unavailable here: {exc}")


def reference_shards(data: bytes) -> list[bytes]:
    """The 14 contiguous shards (format v2) as the contract defines them: data shard i is
    bytes [iL, (i+1)L) of the zero-padded data, and for every position j the 14 bytes
    shard0[j] .. shard13[j] are a reedsolo RSCodec(4) codeword, computed with reedsolo.

    reedsolo runs at ~1 MB/s: keep inputs to a few KiB.
    """
    rs = reedsolo.RSCodec(4)
    n = erasure.shard_size(len(data))
    padded = data + bytes(n * erasure.DATA - len(data))
    shards = [bytearray(padded[i * n : (i + 1) * n]) for i in range(erasure.DATA)]
    shards += [bytearray(n) for _ in range(erasure.PARITY)]
    for j in range(n):
        coded = rs.encode(bytes(shards[i][j] for i in range(erasure.DATA)))
        assert len(coded) == erasure.TOTAL
        for i in range(erasure.DATA, erasure.TOTAL):
            shards[i][j] = coded[i]
    return [bytes(s) for s in shards]


def reference_interleaved(data: bytes) -> list[bytes]:
    """The 14 column-interleaved shards of format v1, computed with reedsolo column by column."""
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


@dataclass(frozen=True)
class Layout:
    """One shard layout: how to encode and decode with a codec, and its reedsolo oracle."""

    name: str
    encode: Callable[[erasure.Codec, bytes], list]
    decode: Callable[[erasure.Codec, list, int], bytes]
    reference: Callable[[bytes], list[bytes]]


LAYOUTS = [
    Layout("contiguous", lambda c, d: c.encode(d), lambda c, s, n: c.decode(s, n), reference_shards),
    Layout("interleaved", interleaved.encode, interleaved.decode, reference_interleaved),
]


@pytest.fixture(params=LAYOUTS, ids=[layout.name for layout in LAYOUTS])
def layout(request: pytest.FixtureRequest) -> Layout:
    """Every test taking `layout` runs for format v2's contiguous and v1's interleaved layout."""
    return request.param


def random_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (os.urandom would make failures unreproducible)."""
    import random

    return random.Random(seed).randbytes(size) if size else b""


@pytest.fixture(scope="session")
def big_data() -> bytes:
    """A bit over 8 MiB (the gateway's chunk size), not a multiple of 10."""
    return os.urandom(8 * 1024 * 1024 + 13)
