"""Erasure codec throughput: encode / decode MB/s per kernel and layout, single thread.

Run: .venv/bin/python bench/erasure.py [--quick] [--no-tune-malloc]

MB/s is input data bytes (1 MB = 10^6 B) over wall-clock seconds, best of N runs, on one
thread. Layouts: "v2" is the contiguous layout new chunks are written in, "v1" the
column-interleaved one of the first release (still read). "decode-4" loses four data
shards (the worst case: four rows recovered through the matrix kernel; v2 computes them
in place in the stripe buffer, `decode_into`). "all-data" is what a read with all ten
data shards costs in the codec: v2 has no step at all (the shards were received at their
offsets in one buffer), v1 runs the byte interleave. "enc-kernel" is the parity kernel
alone on ten existing rows, the floor of any encode.

The gateway tunes glibc malloc (config/malloc.py: one arena, 32 MiB mmap threshold), so
freed shard buffers are reused warm instead of mapped and faulted in again; this bench
does the same unless --no-tune-malloc is given.
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
from machine import cpu_description

import erasure
from config.malloc import tune_malloc
from erasure import interleaved
from erasure.matrix import parity_matrix

LOST = (0, 3, 6, 9)


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
    """MB/s of each operation on `data` with one codec (both layouts)."""
    size = len(data)
    # v2: the stripe as a reader holds it (ten data shards back to back), parity apart.
    shards = codec.encode(data)
    stripe = bytearray(b"".join(bytes(s) for s in shards[: erasure.DATA]))
    parity = {i: shards[i] for i in range(erasure.DATA, erasure.TOTAL)}
    damaged = bytearray(stripe)
    codec.decode_into(damaged, LOST, parity)
    if damaged != stripe or bytes(stripe[:size]) != data:
        raise AssertionError(f"{codec.kernel_name}: v2 decode_into does not round-trip")
    # v1
    v1 = interleaved.encode(codec, data)
    v1_lost: list[bytes | None] = list(v1)
    for i in LOST:
        v1_lost[i] = None
    if interleaved.decode(codec, v1_lost, size) != data or interleaved.decode(codec, v1, size) != data:
        raise AssertionError(f"{codec.kernel_name}: v1 decode does not round-trip")
    rows = [np.frombuffer(s, dtype=np.uint8) for s in v1[: erasure.DATA]]
    out = [np.empty(len(v1[0]), dtype=np.uint8) for _ in range(erasure.PARITY)]
    tables = codec.kernel.prepare(parity_matrix())
    seconds = {
        "v2_encode": best_time(lambda: codec.encode(data), budget),
        "v2_decode4": best_time(lambda: codec.decode_into(damaged, LOST, parity), budget),
        "kernel": best_time(lambda: codec.kernel.apply(tables, rows, out), budget),
        "v1_encode": best_time(lambda: interleaved.encode(codec, data), budget),
        "v1_decode4": best_time(lambda: interleaved.decode(codec, v1_lost, size), budget),
        "v1_all": best_time(lambda: interleaved.decode(codec, v1, size), budget),
    }
    return {k: size / v / 1e6 for k, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-tune-malloc", action="store_true", help="keep glibc's default malloc settings")
    args = parser.parse_args()
    if not args.no_tune_malloc:
        tune_malloc()
    budget = 0.3 if args.quick else 1.5
    codecs = []
    for name in erasure.KERNEL_NAMES:
        try:
            codecs.append(erasure.codec(name))
        except erasure.KernelUnavailable as exc:
            print(f"# kernel {name} unavailable: {exc}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {cpu_description()}")
    print(f"# load average {load:.1f} at start (other work skews the figures); "
          f"malloc {'default' if args.no_tune_malloc else 'tuned as in the gateway'}")
    v2, v1 = " v2 (contiguous) ".center(35, "-"), " v1 (interleaved) ".center(38, "-")
    print(f"{'':16}{v2}   {v1}")
    header = ("kernel", "input", "encode", "decode-4", "all-data", "enc-kernel",
              "encode", "decode-4", "all-data")
    print("{:<7} {:>7} {:>10} {:>10} {:>10} {:>11} {:>10} {:>10} {:>10}  (MB/s, one thread)".format(*header))
    summary: dict[str, dict[str, float]] = {}
    for size in (64 << 20, 8 << 20):
        data = os.urandom(size)
        for codec in codecs:
            m = measure(codec, data, budget)
            if size == 8 << 20:  # the gateway's chunk size: the figure that matters
                summary[codec.kernel_name] = m
            print(f"{codec.kernel_name:<7} {size >> 20:>3} MiB {m['v2_encode']:>10.0f} "
                  f"{m['v2_decode4']:>10.0f} {'no step':>10} {m['kernel']:>11.0f} {m['v1_encode']:>10.0f} "
                  f"{m['v1_decode4']:>10.0f} {m['v1_all']:>10.0f}")
    parts = [
        f"{name} encode {m['v2_encode'] / 1000:.1f} GB/s, decode-4 {m['v2_decode4'] / 1000:.1f} GB/s, "
        f"all-data read no decode step (v1: encode {m['v1_encode'] / 1000:.1f}, decode-4 "
        f"{m['v1_decode4'] / 1000:.1f}, all-data {m['v1_all'] / 1000:.1f})"
        for name, m in summary.items()
    ]
    print("summary (8 MiB chunk): " + "; ".join(parts))


if __name__ == "__main__":
    main()
