"""Both kernels produce exactly reedsolo's code: same parity, same layout."""

from __future__ import annotations

import numpy as np
import pytest
import reedsolo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import erasure
from erasure import gf256
from erasure.matrix import generator_matrix, parity_matrix
from tests.erasure.conftest import random_bytes, reference_shards


def test_constants_and_shard_size() -> None:
    assert (erasure.DATA, erasure.PARITY, erasure.TOTAL) == (10, 4, 14)
    assert [erasure.shard_size(s) for s in (0, 1, 9, 10, 11, 20, 21)] == [1, 1, 1, 1, 2, 2, 3]
    with pytest.raises(ValueError, match=">= 0"):
        erasure.shard_size(-1)
    with pytest.raises(TypeError):
        erasure.shard_size(1.5)  # type: ignore[arg-type]


def test_parity_matrix_is_reedsolo_on_unit_vectors() -> None:
    rs = reedsolo.RSCodec(4)
    p = parity_matrix()
    for i in range(10):
        unit = bytes(1 if k == i else 0 for k in range(10))
        assert bytes(rs.encode(unit)[10:]) == p[:, i].tobytes()
    assert (generator_matrix()[:10] == np.eye(10, dtype=np.uint8)).all()


def test_field_matches_reedsolo() -> None:
    reedsolo.RSCodec(4)  # (re)initialises reedsolo's global field tables to the default field
    for a in range(0, 256, 7):
        for b in range(0, 256, 5):
            assert gf256.mul(a, b) == reedsolo.gf_mul(a, b)
            assert gf256.MUL_TABLE[a, b] == gf256.mul(a, b)
    for a in range(1, 256):
        assert gf256.mul(a, gf256.inv(a)) == 1


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11, 19, 20, 21, 99, 1000, 4097])
def test_encode_matches_reedsolo(codec: erasure.Codec, size: int) -> None:
    data = random_bytes(size, seed=size)
    shards = codec.encode(data)
    assert shards == reference_shards(data)
    assert all(type(s) is bytes and len(s) == erasure.shard_size(size) for s in shards)


def test_empty_input_gives_one_zero_byte_per_shard(codec: erasure.Codec) -> None:
    assert codec.encode(b"") == [b"\x00"] * 14
    assert codec.decode([b"\x00"] * 14, 0) == b""


def test_layout_is_column_interleaved(codec: erasure.Codec) -> None:
    data = bytes(range(35))
    shards = codec.encode(data)
    for j, byte in enumerate(data):
        assert shards[j % 10][j // 10] == byte
    assert shards[5][3] == 0 and shards[9][3] == 0  # zero padding of the last column


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_encode_matches_reedsolo_property(codec: erasure.Codec, data: bytes) -> None:
    assert codec.encode(data) == reference_shards(data)


def test_accepts_bytes_like_inputs(codec: erasure.Codec) -> None:
    data = random_bytes(1234, seed=3)
    expected = codec.encode(data)
    assert codec.encode(bytearray(data)) == expected
    assert codec.encode(memoryview(data)) == expected
    assert codec.encode(memoryview(b"xx" + data)[2:]) == expected  # unaligned view
    assert codec.encode(np.frombuffer(data, dtype=np.uint8)) == expected
    with pytest.raises(TypeError, match="bytes-like"):
        codec.encode("text")  # type: ignore[arg-type]


def test_kernels_agree_on_large_input(big_data: bytes) -> None:
    try:
        isal = erasure.codec("isal")
    except erasure.KernelUnavailable as exc:
        pytest.skip(str(exc))
    shards = isal.encode(big_data)
    assert shards == erasure.codec("numpy").encode(big_data)
    # Spot-check columns of the large stripe against reedsolo itself (all of them would take minutes).
    rs = reedsolo.RSCodec(4)
    n = len(shards[0])
    rng = np.random.default_rng(1)
    for k in [0, 1, n - 2, n - 1, *rng.integers(0, n, 200).tolist()]:
        column = bytes(s[k] for s in shards[:10])
        assert bytes(rs.encode(column)[10:]) == bytes(s[k] for s in shards[10:]), k
