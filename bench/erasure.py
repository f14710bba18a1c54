"""Erasure codec throughput: encode / decode MB/s per kernel, single thread.

Run: .venv/bin/python bench/erasure.py [--quick]

MB/s is input data bytes (1 MB = 10^6 B) over wall-clock seconds, best of N runs, on
one thread. "decode-4" loses four data shards (worst case: four rows recovered through
the matrix kernel); "decode-fast" has all ten data shards (interleave only).
"encode-kernel" times the parity kernel alone on already-split rows, to separate the
GF(2^8) work from the byte transpose that the shard layout requires.

Results are fresh bytes objects, so each call maps new pages unless malloc keeps freed
memory around; compare with
GLIBC_TUNABLES=glibc.malloc.trim_threshold=1073741824:glibc.malloc.mmap_threshold=1073741824
(a per-process deployment choice, not something the codec sets).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

import erasure
from erasure.matrix import parity_matrix


def best_time(fn: Callable[[], object], budget_s: float, min_runs: int = 3, max_runs: int = 50) -> float:
    fn()  # warm caches, tables and per-thread scratch
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(codec: erasure.Codec, data: bytes, budget: float) -> dict[str, float]:
    """MB/s of encode, parity kernel alone, 4-data-shard-loss decode and all-data decode."""
    size = len(data)
    shards = codec.encode(data)
    lost: list[bytes | None] = list(shards)
    for i in (0, 3, 6, 9):
        lost[i] = None
    if codec.decode(lost, size) != data or codec.decode(shards, size) != data:
        raise AssertionError(f"{codec.kernel_name}: decode does not round-trip")
    rows = [np.frombuffer(s, dtype=np.uint8) for s in shards[: erasure.DATA]]
    parity = [np.empty(len(shards[0]), dtype=np.uint8) for _ in range(erasure.PARITY)]
    tables = codec.kernel.prepare(parity_matrix())
    seconds = {
        "encode": best_time(lambda: codec.encode(data), budget),
        "kernel": best_time(lambda: codec.kernel.apply(tables, rows, parity), budget),
        "decode4": best_time(lambda: codec.decode(lost, size), budget),
        "fast": best_time(lambda: codec.decode(shards, size), budget),
    }
    return {k: size / v / 1e6 for k, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    budget = 0.3 if args.quick else 1.5
    codecs = []
    for name in erasure.KERNEL_NAMES:
        try:
            codecs.append(erasure.codec(name))
        except erasure.KernelUnavailable as exc:
            print(f"# kernel {name} unavailable: {exc}")
    header = ("kernel", "input", "encode", "enc-kernel", "decode-4", "decode-fast")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {os.cpu_count()} CPUs, load average {load:.1f} at start (other work skews the figures)")
    print("{:<7} {:>7} {:>9} {:>10} {:>9} {:>11}  (MB/s, single thread)".format(*header))
    summary: dict[str, dict[str, float]] = {}
    for size in (64 << 20, 8 << 20):
        data = os.urandom(size)
        for codec in codecs:
            mbps = measure(codec, data, budget)
            if size == 8 << 20:  # the gateway's chunk size: the figure that matters
                summary[codec.kernel_name] = mbps
            print(
                f"{codec.kernel_name:<7} {size >> 20:>3} MiB {mbps['encode']:>9.0f} {mbps['kernel']:>10.0f} "
                f"{mbps['decode4']:>9.0f} {mbps['fast']:>11.0f}"
            )
    parts = [
        f"{name} encode {m['encode'] / 1000:.1f} GB/s decode {m['decode4'] / 1000:.1f} GB/s "
        f"(all-data {m['fast'] / 1000:.1f}, parity kernel alone {m['kernel'] / 1000:.1f})"
        for name, m in summary.items()
    ]
    print("summary (8 MiB): " + "; ".join(parts))


if __name__ == "__main__":
    main()
