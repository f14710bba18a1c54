"""The column interleave: the C extension and the numpy fallback give the same bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erasure import layout
from erasure.matrix import DATA


def reference(columns: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(columns[:, i]) for i in range(DATA)]


def test_extension_is_built_and_used() -> None:
    # setup.sh installs with a compiler present; a silent build failure would cost ~4x speed.
    assert layout.can_fuse()
    assert layout.implementation() in ("avx512vbmi", "scalar")


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 3000), offset=st.integers(0, 63), seed=st.integers(0, 2**32 - 1))
def test_split_and_join_match_reference_at_any_alignment(m: int, offset: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    backing = rng.integers(0, 256, offset + m * DATA, dtype=np.uint8)
    columns = backing[offset:].reshape(m, DATA)  # unaligned starts, as memoryview slices give
    want = reference(columns)
    for split in (layout.split, layout.split_numpy):
        rows = [np.full(m + 3, 0xAA, dtype=np.uint8)[1 : m + 1] for _ in range(DATA)]
        split(columns, rows)
        for i in range(DATA):
            assert np.array_equal(rows[i], want[i])
    for join in (layout.join, layout.join_numpy):
        out = np.zeros(m * DATA + 1, dtype=np.uint8)[1:].reshape(m, DATA)
        join(want, out)
        assert np.array_equal(out, columns)


def test_large_split_matches_numpy() -> None:
    m = (8 << 20) // DATA + 37  # past many 64-column vector blocks, with a scalar tail
    columns = np.random.default_rng(1).integers(0, 256, m * DATA, dtype=np.uint8).reshape(m, DATA)
    native = [np.empty(m, dtype=np.uint8) for _ in range(DATA)]
    fallback = [np.empty(m, dtype=np.uint8) for _ in range(DATA)]
    layout.split(columns, native)
    layout.split_numpy(columns, fallback)
    assert all(np.array_equal(a, b) for a, b in zip(native, fallback, strict=True))


def test_bad_arguments_are_refused() -> None:
    columns = np.zeros((10, DATA), dtype=np.uint8)
    with pytest.raises(ValueError, match="ten rows"):
        layout.split(columns, [np.zeros(10, dtype=np.uint8)] * 9)
    with pytest.raises(ValueError, match="at least m bytes"):
        layout.split(columns, [np.zeros(9, dtype=np.uint8)] * DATA)
    with pytest.raises(ValueError, match="contiguous"):
        layout.split(np.zeros((10, 20), dtype=np.uint8)[:, ::2], [np.zeros(10, dtype=np.uint8)] * DATA)
    with pytest.raises(ValueError, match="writable"):
        ro = np.zeros(10, dtype=np.uint8)
        ro.flags.writeable = False
        layout.split(columns, [ro] * DATA)
