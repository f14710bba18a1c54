"""Reed-Solomon 10+4 erasure coding, byte-identical to reedsolo.RSCodec(4) per column.

Shard i holds byte i of every 10-byte column of the data (zero-padded to a multiple
of 10); shards 10..13 hold reedsolo's four parity bytes of each column. The data path
runs on ISA-L when libisal.so.2 is present, else on a vectorised numpy kernel;
SHARDBOX_ERASURE_KERNEL=isal|numpy forces one. See docs/internals.md for the contract.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence

from erasure.kernels import KERNEL_NAMES, KernelUnavailable, default_kernel, load_kernel
from erasure.matrix import DATA, PARITY, TOTAL
from erasure.stripe import Codec, ShardInput, TooManyErasures, recovery_matrix, shard_size

__all__ = [
    "DATA",
    "KERNEL_NAMES",
    "PARITY",
    "TOTAL",
    "Codec",
    "KernelUnavailable",
    "TooManyErasures",
    "codec",
    "decode",
    "encode",
    "kernel_name",
    "reconstruct",
    "recovery_matrix",
    "shard_size",
]

_default_lock = threading.Lock()
_default: Codec | None = None


@functools.cache
def _named_codec(name: str) -> Codec:
    return Codec(load_kernel(name))


def codec(name: str | None = None) -> Codec:
    """The codec for kernel `name` ("isal" or "numpy"), or the default one for None.

    Raises KernelUnavailable if the named kernel cannot run here.
    """
    global _default
    if name is not None:
        return _named_codec(name)
    if _default is None:
        with _default_lock:
            if _default is None:
                kernel = default_kernel()
                _default = _named_codec(kernel.name)
    return _default


def kernel_name() -> str:
    """Name of the kernel the module-level functions use: "isal" or "numpy"."""
    return codec().kernel_name


def encode(data: bytes | bytearray | memoryview) -> list[bytes]:
    """Split `data` into 14 shards of shard_size(len(data)) bytes (10 data + 4 parity)."""
    return codec().encode(data)


def decode(shards: Sequence[ShardInput | None], size: int) -> bytes:
    """The original `size` bytes from any 10 of the 14 shards (None marks a missing one)."""
    return codec().decode(shards, size)


def reconstruct(shards: Sequence[ShardInput | None]) -> list[bytes]:
    """All 14 shards, rebuilding any (up to 4) missing data or parity shards."""
    return codec().reconstruct(shards)
