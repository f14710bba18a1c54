"""What machine a benchmark ran on, for its header line (bench/RESULTS.md asks for the CPU
model; AVX-512 or not decides which fast paths other codecs take)."""

from __future__ import annotations

import os
import platform


def cpu_description() -> str:
    """CPU model, CPU count and whether it has AVX-512 / AVX2."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == "model name" and not model:
                    model = value.strip()
                elif name.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    model = model or platform.processor() or "unknown CPU"
    avx512 = sorted(f for f in flags if f.startswith("avx512"))
    simd = "AVX-512: " + (", ".join(avx512) if avx512 else "no") + ("; AVX2: yes" if "avx2" in flags else "")
    return f"{model}, {os.cpu_count()} CPUs; {simd}"
