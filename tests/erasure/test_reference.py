"""Both kernels produce exactly reedsolo's code in both layouts: same parity, same placement."""

from __future__ import annotations

import numpy as np
import pytest
import reedsolo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import erasure
from erasure import gf256
from erasure.matrix import generator_matrix, parity_matrix
from tests.erasure.conftest import Layout, random_bytes


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
def test_encode_matches_reedsolo(codec: erasure.Codec, layout: Layout, size: int) -> None:
    data = random_bytes(size, seed=size)
    shards = layout.encode(codec, data)
    assert shards == layout.reference(data)
    assert all(len(s) == erasure.shard_size(size) for s in shards)
    assert all(type(s) is bytes for s in shards[erasure.DATA :])


def test_empty_input_gives_one_zero_byte_per_shard(codec: erasure.Codec, layout: Layout) -> None:
    assert layout.encode(codec, b"") == [b"\x00"] * 14
    assert layout.decode(codec, [b"\x00"] * 14, 0) == b""


def test_interleaved_layout_is_column_interleaved(codec: erasure.Codec) -> None:
    data = bytes(range(35))
    shards = erasure.interleaved.encode(codec, data)
    for j, byte in enumerate(data):
        assert shards[j % 10][j // 10] == byte
    assert shards[5][3] == 0 and shards[9][3] == 0  # zero padding of the last column


def test_contiguous_layout_cuts_the_data_in_ten(codec: erasure.Codec) -> None:
    data = bytes(range(35))  # L = 4: shards 0..7 full, shard 8 holds 3 bytes and a zero, shard 9 zeros
    shards = codec.encode(data)
    for i in range(8):
        assert bytes(shards[i]) == data[4 * i : 4 * i + 4]
    assert shards[8] == data[32:] + b"\x00" and shards[9] == bytes(4)


def test_contiguous_data_shards_are_views_of_the_input(codec: erasure.Codec) -> None:
    """Encoding copies no data shard that lies inside the input; with a buffer padded to
    the stripe size, none at all."""
    size = 1000 * 10 - 3
    buf = bytearray(erasure.stripe_size(size))
    buf[:size] = random_bytes(size, seed=4)
    shards = codec.encode(buf)
    for i in range(erasure.DATA):
        assert isinstance(shards[i], memoryview) and shards[i].obj is not None
        buf[i * 1000] ^= 0xFF   # the shard sees the change: it is the buffer itself
        assert shards[i][0] == buf[i * 1000]
        buf[i * 1000] ^= 0xFF
    unpadded = codec.encode(bytes(buf[:size]))
    assert [type(s) for s in unpadded[: erasure.DATA]] == [memoryview] * 9 + [bytes]
    assert unpadded == shards


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000))
def test_encode_matches_reedsolo_property(codec: erasure.Codec, layout: Layout, data: bytes) -> None:
    assert layout.encode(codec, data) == layout.reference(data)


def test_accepts_bytes_like_inputs(codec: erasure.Codec, layout: Layout) -> None:
    data = random_bytes(1234, seed=3)
    expected = layout.encode(codec, data)
    assert layout.encode(codec, bytearray(data)) == expected
    assert layout.encode(codec, memoryview(data)) == expected
    assert layout.encode(codec, memoryview(b"xx" + data)[2:]) == expected  # unaligned view
    assert layout.encode(codec, np.frombuffer(data, dtype=np.uint8)) == expected
    with pytest.raises(TypeError, match="bytes-like"):
        layout.encode(codec, "text")  # type: ignore[arg-type]


def test_kernels_agree_on_large_input(big_data: bytes, layout: Layout) -> None:
    try:
        isal = erasure.codec("isal")
    except erasure.KernelUnavailable as exc:
        pytest.skip(str(exc))
    shards = layout.encode(isal, big_data)
    assert shards == layout.encode(erasure.codec("numpy"), big_data)
    # Spot-check positions of the large stripe against reedsolo itself (all would take minutes).
    rs = reedsolo.RSCodec(4)
    n = len(shards[0])
    rng = np.random.default_rng(1)
    for k in [0, 1, n - 2, n - 1, *rng.integers(0, n, 200).tolist()]:
        column = bytes(s[k] for s in shards[:10])
        assert bytes(rs.encode(column)[10:]) == bytes(s[k] for s in shards[10:]), k
    if layout.name == "contiguous":
        padded = big_data + bytes(erasure.stripe_size(len(big_data)) - len(big_data))
        assert b"".join(bytes(s) for s in shards[: erasure.DATA]) == padded
