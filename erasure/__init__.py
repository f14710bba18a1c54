"""Reed-Solomon 10+4 erasure coding, byte-identical to reedsolo.RSCodec(4) per column.

Two layouts of the same code. Contiguous (storage format v2, what is written): the data,
zero-padded to 10 L bytes, is cut into ten shards of L bytes, shard i = bytes [iL, (i+1)L);
shards 10..13 hold reedsolo's four parity bytes of each byte position across the ten.
Column-interleaved (format v1, read only): shard i holds byte i of every 10-byte column
(`encode_interleaved` / `decode_interleaved`). The kernel is ISA-L when libisal.so.2 is
present, else a vectorised numpy one; SHARDBOX_ERASURE_KERNEL=isal|numpy forces one.
See docs/internals.md for the contract.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping, Sequence

from erasure import interleaved
from erasure.kernels import KERNEL_NAMES, KernelUnavailable, default_kernel, load_kernel, slow_kernel_notice
from erasure.matrix import DATA, PARITY, TOTAL
from erasure.stripe import Codec, Shard, ShardInput, TooManyErasures, recovery_matrix, shard_size, stripe_size

__all__ = [
    "DATA",
    "KERNEL_NAMES",
    "PARITY",
    "TOTAL",
    "Codec",
    "KernelUnavailable",
    "Shard",
    "TooManyErasures",
    "codec",
    "decode",
    "decode_interleaved",
    "decode_into",
    "encode",
    "encode_interleaved",
    "kernel_name",
    "reconstruct",
    "recovery_matrix",
    "shard_size",
    "slow_kernel_notice",
    "stripe_size",
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


def encode(data: bytes | bytearray | memoryview) -> list[Shard]:
    """14 contiguous shards of shard_size(len(data)) bytes; the data shards are views of `data`."""
    return codec().encode(data)


def decode(shards: Sequence[ShardInput | None], size: int) -> bytes:
    """The original `size` bytes from any 10 of the 14 contiguous shards (None marks a missing one)."""
    return codec().decode(shards, size)


def decode_into(stripe: bytearray | memoryview, lost: Sequence[int],
                parity: Mapping[int, ShardInput]) -> None:
    """Compute the `lost` data shards of a stripe (ten data shards back to back) in place."""
    codec().decode_into(stripe, lost, parity)


def reconstruct(shards: Sequence[ShardInput | None]) -> list[bytes]:
    """All 14 shards, rebuilding any (up to 4) missing data or parity shards (either layout)."""
    return codec().reconstruct(shards)


def encode_interleaved(data: bytes | bytearray | memoryview) -> list[bytes]:
    """Format v1: 14 column-interleaved shards of shard_size(len(data)) bytes."""
    return interleaved.encode(codec(), data)


def decode_interleaved(shards: Sequence[ShardInput | None], size: int) -> bytes:
    """Format v1: the original `size` bytes from any 10 of 14 column-interleaved shards."""
    return interleaved.decode(codec(), shards, size)
