"""Bad input fails with a precise error and no partial result."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import erasure
from erasure import kernel_isal
from erasure.stripe import Codec
from tests.erasure.conftest import random_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def shards(codec: Codec) -> list[bytes]:
    return codec.encode(random_bytes(1000, seed=8))


@pytest.mark.parametrize("lost", [(0, 1, 2, 3, 4), (9, 10, 11, 12, 13), tuple(range(14))])
def test_five_or_more_erasures_raise(codec: Codec, shards: list[bytes], lost: tuple[int, ...]) -> None:
    damaged = [None if i in lost else s for i, s in enumerate(shards)]
    with pytest.raises(erasure.TooManyErasures, match=rf"{len(lost)} of 14 shards are missing.*at most 4"):
        codec.decode(damaged, 1000)
    with pytest.raises(ValueError):  # TooManyErasures is a ValueError
        codec.reconstruct(damaged)


def test_wrong_shard_count(codec: Codec, shards: list[bytes]) -> None:
    with pytest.raises(ValueError, match=r"expected 14 shards.*got 13"):
        codec.decode(shards[:13], 1000)
    with pytest.raises(ValueError, match=r"expected 14 shards.*got 15"):
        codec.reconstruct([*shards, shards[0]])
    with pytest.raises(TypeError, match="sequence of 14 shards"):
        codec.decode(b"".join(shards), 1000)  # type: ignore[arg-type]


def test_unequal_shard_lengths(codec: Codec, shards: list[bytes]) -> None:
    bad = list(shards)
    bad[5] = bad[5][:-1]
    with pytest.raises(ValueError, match="shard 5 is 99 bytes but shard 0 is 100"):
        codec.decode(bad, 1000)
    bad = list(shards)
    bad[0] = None  # type: ignore[call-overload]
    bad[13] = bad[13] + b"x"
    with pytest.raises(ValueError, match="shard 13 is 101 bytes but shard 1 is 100"):
        codec.reconstruct(bad)


def test_empty_shard(codec: Codec, shards: list[bytes]) -> None:
    bad = list(shards)
    bad[2] = b""
    with pytest.raises(ValueError, match="shard 2 is empty"):
        codec.decode(bad, 1000)


@pytest.mark.parametrize("size", [990, 1001, 5000, -1])
def test_size_inconsistent_with_shards(codec: Codec, shards: list[bytes], size: int) -> None:
    with pytest.raises(ValueError, match="size"):
        codec.decode(shards, size)


def test_size_bounds_accepted(codec: Codec, shards: list[bytes]) -> None:
    data = random_bytes(1000, seed=8)
    assert codec.decode(shards, 991) == data[:991]  # same shard length, shorter tail
    assert codec.decode(shards, 1000) == data


def test_non_bytes_shard(codec: Codec, shards: list[bytes]) -> None:
    bad: list[object] = list(shards)
    bad[7] = "not bytes"
    with pytest.raises(TypeError, match="shard 7 must be bytes-like"):
        codec.decode(bad, 1000)  # type: ignore[arg-type]


def test_unknown_kernel_name() -> None:
    with pytest.raises(ValueError, match="unknown erasure kernel 'avx9'"):
        erasure.codec("avx9")


def test_isal_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_isal, "_LIB_NAMES", ("libisal-not-installed.so.2",))
    monkeypatch.setattr(kernel_isal.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(erasure.KernelUnavailable, match=r"libisal2.*SHARDBOX_ERASURE_KERNEL=numpy"):
        kernel_isal.IsalKernel()


def test_slow_kernel_notice_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARDBOX_ERASURE_KERNEL", raising=False)
    monkeypatch.setattr(kernel_isal, "_LIB_NAMES", ("libisal-not-installed.so.2",))
    monkeypatch.setattr(kernel_isal.ctypes.util, "find_library", lambda name: None)
    notice = erasure.slow_kernel_notice()
    assert notice is not None
    assert "slow numpy kernel" in notice and "apt-get install libisal2" in notice
    monkeypatch.setenv("SHARDBOX_ERASURE_KERNEL", "numpy")
    assert "SHARDBOX_ERASURE_KERNEL=numpy" in (erasure.slow_kernel_notice() or "")


def test_no_notice_when_isal_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHARDBOX_ERASURE_KERNEL", raising=False)
    try:
        kernel_isal.IsalKernel()
    except erasure.KernelUnavailable as exc:
        pytest.skip(str(exc))
    assert erasure.slow_kernel_notice() is None


def _kernel_in_subprocess(env_value: str | None) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k != "SHARDBOX_ERASURE_KERNEL"}
    if env_value is not None:
        env["SHARDBOX_ERASURE_KERNEL"] = env_value
    code = "import erasure; print(erasure.kernel_name()); print(erasure.decode(erasure.encode(b'abc'), 3))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


def test_env_var_selects_kernel() -> None:
    forced = _kernel_in_subprocess("numpy")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout.split() == ["numpy", "b'abc'"]
    default = _kernel_in_subprocess(None)
    assert default.returncode == 0, default.stderr
    assert default.stdout.split()[0] in ("isal", "numpy")
    bogus = _kernel_in_subprocess("fastest")
    assert bogus.returncode != 0
    assert "SHARDBOX_ERASURE_KERNEL='fastest' is not a kernel" in bogus.stderr
