"""Decoding and reconstruction from any 10 shards, in both layouts; every erasure pattern up to four."""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import erasure
from erasure.gf256 import mat_mul
from erasure.matrix import generator_matrix
from erasure.stripe import Codec, recovery_matrix
from tests.erasure.conftest import Layout, random_bytes

ALL_PATTERNS = [p for k in range(1, 5) for p in itertools.combinations(range(14), k)]


def drop(shards: list, lost: tuple[int, ...] | list[int]) -> list:
    return [None if i in lost else s for i, s in enumerate(shards)]


def stripe_of(shards: list, lost: tuple[int, ...] | list[int] = ()) -> tuple[bytearray, dict[int, bytes]]:
    """The ten data shards back to back (lost ones filled with garbage) and the parity shards
    not lost, as a reader that received them holds them."""
    n = len(shards[0])
    stripe = bytearray(b"".join(b"\xa5" * n if i in lost else bytes(s) for i, s in enumerate(shards[:10])))
    return stripe, {i: shards[i] for i in range(10, 14) if i not in lost}


def test_pattern_count() -> None:
    assert len([p for p in ALL_PATTERNS if len(p) == 4]) == 1001
    assert len(ALL_PATTERNS) == 14 + 91 + 364 + 1001


def test_every_erasure_pattern_decodes_and_reconstructs(codec: Codec, layout: Layout) -> None:
    data = random_bytes(47, seed=47)  # 5 columns / shard bytes, the last one partial
    shards = layout.encode(codec, data)
    for lost in ALL_PATTERNS:
        damaged = drop(shards, lost)
        assert layout.decode(codec, damaged, len(data)) == data, lost
        assert codec.reconstruct(damaged) == shards, lost


def test_every_erasure_pattern_decodes_in_place(codec: Codec) -> None:
    """decode_into rebuilds exactly the lost data shards of a stripe from what is left."""
    data = random_bytes(93, seed=93)
    shards = codec.encode(data)
    whole, _ = stripe_of(shards)
    for lost in ALL_PATTERNS:
        stripe, parity = stripe_of(shards, lost)
        codec.decode_into(stripe, [i for i in lost if i < 10], parity)
        assert stripe == whole, lost


@pytest.mark.parametrize("lost", [(0, 1, 2, 3, 4), (0, 1, 2, 3, 10), (5, 10, 11, 12, 13)])
def test_five_lost_are_refused_in_place(codec: Codec, lost: tuple[int, ...]) -> None:
    shards = codec.encode(random_bytes(500, seed=5))
    stripe, parity = stripe_of(shards, lost)
    before = bytes(stripe)
    with pytest.raises(erasure.TooManyErasures, match="5 of 14 shards are missing"):
        codec.decode_into(stripe, [i for i in lost if i < 10], parity)
    assert stripe == before  # nothing written


def test_decode_into_refuses_bad_arguments(codec: Codec) -> None:
    shards = codec.encode(random_bytes(500, seed=6))
    stripe, parity = stripe_of(shards, (1,))
    with pytest.raises(ValueError, match="data shard indexes"):
        codec.decode_into(stripe, [11], parity)
    with pytest.raises(ValueError, match="not ten equal shards"):
        codec.decode_into(stripe[:-1], [1], parity)
    with pytest.raises(ValueError, match="writable"):
        codec.decode_into(bytes(stripe), [1], parity)
    with pytest.raises(ValueError, match="parity shard 12 is 49 bytes"):
        codec.decode_into(stripe, [1], {**parity, 12: shards[12][:-1]})
    codec.decode_into(stripe, [], parity)  # nothing lost: nothing to do


@pytest.mark.parametrize("size", [0, 1, 9, 10, 11])
def test_tiny_sizes_with_losses(codec: Codec, layout: Layout, size: int) -> None:
    data = random_bytes(size, seed=size + 100)
    shards = layout.encode(codec, data)
    for lost in [(), (0,), (13,), (0, 1, 2, 3), (9, 10, 11, 12), (10, 11, 12, 13)]:
        damaged = drop(shards, lost)
        assert layout.decode(codec, damaged, size) == data
        assert codec.reconstruct(damaged) == shards


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=5000),
    lost=st.lists(st.integers(0, 13), max_size=4, unique=True),
)
def test_decode_round_trip_property(codec: Codec, layout: Layout, data: bytes, lost: list[int]) -> None:
    shards = layout.encode(codec, data)
    damaged = drop(shards, lost)
    assert layout.decode(codec, damaged, len(data)) == data
    rebuilt = codec.reconstruct(damaged)
    assert rebuilt == shards
    assert all(type(s) is bytes for s in rebuilt)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    data=st.binary(max_size=5000),
    lost=st.lists(st.integers(0, 13), max_size=4, unique=True),
)
def test_decode_into_property(codec: Codec, data: bytes, lost: list[int]) -> None:
    shards = codec.encode(data)
    stripe, parity = stripe_of(shards, lost)
    codec.decode_into(stripe, [i for i in lost if i < 10], parity)
    assert bytes(stripe[: len(data)]) == data
    assert not any(stripe[len(data) :])  # the padding comes back as zeros


def test_large_input_worst_case_decode(codec: Codec, layout: Layout, big_data: bytes) -> None:
    shards = layout.encode(codec, big_data)
    assert len(shards[0]) == erasure.shard_size(len(big_data))
    assert layout.decode(codec, drop(shards, (0, 3, 6, 9)), len(big_data)) == big_data
    assert layout.decode(codec, shards, len(big_data)) == big_data
    rebuilt = codec.reconstruct(drop(shards, (2, 10, 12, 13)))
    assert rebuilt[2] == shards[2] and rebuilt[10:] == shards[10:]


def test_reconstruct_rebuilds_parity_only(codec: Codec, layout: Layout) -> None:
    data = random_bytes(500, seed=5)
    shards = layout.encode(codec, data)
    rebuilt = codec.reconstruct(drop(shards, (10, 11, 12, 13)))
    assert rebuilt == shards
    assert codec.reconstruct(list(shards)) == shards


def test_decode_accepts_buffers_of_any_kind(codec: Codec, layout: Layout) -> None:
    data = random_bytes(321, seed=9)
    shards = layout.encode(codec, data)
    mixed: list[object] = [
        memoryview(s) if i % 3 == 0 else bytearray(s) if i % 3 == 1 else np.frombuffer(s, np.uint8)
        for i, s in enumerate(shards)
    ]
    mixed[4] = None
    assert layout.decode(codec, mixed, len(data)) == data  # type: ignore[arg-type]
    assert codec.reconstruct(mixed) == shards  # type: ignore[arg-type]


def test_results_are_independent_of_later_calls(codec: Codec, layout: Layout) -> None:
    a, b = random_bytes(10_000, seed=1), random_bytes(10_000, seed=2)
    shards_a = layout.encode(codec, a)
    copy_a = [bytes(bytearray(s)) for s in shards_a]
    decoded_a = layout.decode(codec, drop(shards_a, (1, 2, 3, 4)), len(a))
    shards_b = layout.encode(codec, b)
    layout.decode(codec, drop(shards_b, (1, 2, 3, 4)), len(b))
    codec.reconstruct(drop(shards_b, (0, 13)))
    assert shards_a == copy_a
    assert decoded_a == a


class _CountingKernel:
    """Wraps a real kernel and counts apply() calls (the all-data decode must make none)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.table_cache_size = inner.table_cache_size  # type: ignore[attr-defined]
        self.applies = 0

    def prepare(self, matrix: np.ndarray) -> object:
        return self.inner.prepare(matrix)  # type: ignore[attr-defined]

    def apply(self, tables: object, inputs: list, outputs: list) -> None:
        self.applies += 1
        self.inner.apply(tables, inputs, outputs)  # type: ignore[attr-defined]


def test_all_data_present_decode_does_no_matrix_work(codec: Codec, layout: Layout) -> None:
    counting = Codec(_CountingKernel(codec.kernel))  # type: ignore[arg-type]
    data = random_bytes(2000, seed=11)
    shards = layout.encode(counting, data)
    before = counting.kernel.applies  # type: ignore[attr-defined]
    assert layout.decode(counting, drop(shards, (10, 11, 12, 13)), len(data)) == data
    assert layout.decode(counting, shards, len(data)) == data
    assert counting.kernel.applies == before  # type: ignore[attr-defined]
    assert layout.decode(counting, drop(shards, (0,)), len(data)) == data
    assert counting.kernel.applies == before + 1  # type: ignore[attr-defined]


def test_decode_into_computes_only_the_lost_shards(codec: Codec) -> None:
    """One kernel call whose outputs are exactly the lost shards' places in the stripe."""
    seen: list[int] = []

    class Recording(_CountingKernel):
        def apply(self, tables: object, inputs: list, outputs: list) -> None:
            seen.append(len(outputs))
            super().apply(tables, inputs, outputs)

    counting = Codec(Recording(codec.kernel))  # type: ignore[arg-type]
    shards = counting.encode(random_bytes(2000, seed=12))
    whole, _ = stripe_of(shards)
    stripe, parity = stripe_of(shards, (2, 7, 11))
    seen.clear()
    counting.decode_into(stripe, [2, 7], parity)
    assert seen == [2] and stripe == whole


def test_recovery_matrix_inverts_generator() -> None:
    g = generator_matrix()
    survivors = (1, 2, 4, 5, 7, 8, 10, 11, 12, 13)
    wanted = (0, 3, 6, 9)
    m = recovery_matrix(survivors, wanted)
    assert (mat_mul(m, g[list(survivors)]) == g[list(wanted)]).all()
    assert recovery_matrix.cache_info().maxsize == 1024
    assert recovery_matrix(survivors, wanted) is m  # cached


def test_concurrent_use_from_threads(codec: Codec, layout: Layout) -> None:
    inputs = [random_bytes(200_000 + 7 * t, seed=t) for t in range(6)]
    expected = [layout.encode(codec, d) for d in inputs]
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        try:
            for round_ in range(5):
                data = inputs[(t + round_) % len(inputs)]
                shards = layout.encode(codec, data)
                assert shards == expected[(t + round_) % len(inputs)]
                lost = ((t + round_) % 10, 10 + round_ % 4)
                assert layout.decode(codec, drop(shards, lost), len(data)) == data
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    size=st.integers(8 * 1024 * 1024 + 1, 9 * 1024 * 1024),
    seed=st.integers(0, 2**32 - 1),
    lost=st.lists(st.integers(0, 13), min_size=1, max_size=4, unique=True),
)
def test_large_round_trip_property(codec: Codec, size: int, seed: int, lost: list[int]) -> None:
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    shards = codec.encode(data)
    assert len(shards[0]) == erasure.shard_size(size)
    assert codec.decode(drop(shards, lost), size) == data
    assert codec.reconstruct(drop(shards, lost)) == shards
    stripe, parity = stripe_of(shards, lost)
    codec.decode_into(stripe, [i for i in lost if i < 10], parity)
    assert bytes(stripe[:size]) == data


def test_reconstruct_takes_any_iterable_and_keeps_present_bytes(codec: Codec) -> None:
    data = random_bytes(777, seed=12)
    shards = erasure.interleaved.encode(codec, data)
    rebuilt = codec.reconstruct(iter(drop(shards, (4, 12))))
    assert rebuilt == shards
    assert rebuilt[0] is shards[0]  # present bytes shards are handed back, not copied


def test_singular_matrix_is_rejected() -> None:
    from erasure.gf256 import mat_inv

    m = np.eye(3, dtype=np.uint8)
    m[2] = m[1]
    with pytest.raises(ValueError, match="singular"):
        mat_inv(m)
