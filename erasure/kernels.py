"""Kernel interface and selection.

A kernel multiplies a small coefficient matrix (rows x 10, over GF(2^8)) by ten
equal-length byte rows, writing `rows` output rows. Encoding uses the 4x10 parity
matrix; decoding uses a recovery matrix derived per erasure pattern. The codec owns the
shard layout; kernels only ever see whole, contiguous rows.

Selection: ISA-L when libisal.so.2 loads, else the numpy kernel.
SHARDBOX_ERASURE_KERNEL=isal|numpy forces one (forcing isal without the library is an
error rather than a silent slow fallback).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

ENV_VAR = "SHARDBOX_ERASURE_KERNEL"
KERNEL_NAMES = ("isal", "numpy")

log = logging.getLogger("shardbox.erasure")


class KernelUnavailable(RuntimeError):
    """The requested kernel cannot run on this machine (e.g. ISA-L not installed)."""


class Kernel(Protocol):
    name: str
    # How many prepared tables the codec should keep per kernel (they differ in size a lot).
    table_cache_size: int

    def prepare(self, matrix: np.ndarray) -> Any:
        """Precompute whatever `apply` needs for this uint8 coefficient matrix."""
        ...

    def apply(self, tables: Any, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        """outputs[r] = sum_c matrix[r, c] * inputs[c] over GF(2^8), for equal-length uint8 rows."""
        ...

    # Optional, for kernels written in C: `c_function`, the address of a function with
    # ISA-L's ec_encode_data signature, and `c_tables(tables)`, the address of the
    # prepared tables; the encoder then runs transpose and parity in one C loop.


def load_kernel(name: str) -> Kernel:
    """Instantiate the named kernel; KernelUnavailable if it cannot run here."""
    if name == "isal":
        from erasure.kernel_isal import IsalKernel

        return IsalKernel()
    if name == "numpy":
        from erasure.kernel_numpy import NumpyKernel

        return NumpyKernel()
    raise ValueError(f"unknown erasure kernel {name!r}; choose one of {', '.join(KERNEL_NAMES)}")


def slow_kernel_notice() -> str | None:
    """What to tell an operator at start when the default kernel is not ISA-L, else None.

    The numpy kernel is ~8x slower (about 1 GB/s a core): every PUT pays it. Said on the
    console by `shardbox up` (and logged by each process), with the fix.
    """
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced == "numpy":
        return (f"shardbox: erasure coding runs on the slow numpy kernel because {ENV_VAR}=numpy "
                "is set; unset it to use ISA-L")
    if forced:
        return None
    try:
        load_kernel("isal")
    except KernelUnavailable as exc:
        return ("shardbox: WARNING: ISA-L is not installed, so erasure coding runs on the slow numpy "
                "kernel (~1 GB/s a core instead of ~8). Fix: install the Debian package libisal2 "
                f"(`sudo apt-get install libisal2`, or `bash scripts/setup.sh`) and restart. ({exc})")
    return None


def default_kernel() -> Kernel:
    """The kernel named by SHARDBOX_ERASURE_KERNEL, else ISA-L if loadable, else numpy."""
    forced = os.environ.get(ENV_VAR, "").strip().lower()
    if forced:
        if forced not in KERNEL_NAMES:
            raise ValueError(f"{ENV_VAR}={forced!r} is not a kernel; choose one of {', '.join(KERNEL_NAMES)}")
        return load_kernel(forced)
    try:
        return load_kernel("isal")
    except KernelUnavailable as exc:
        log.warning("erasure.kernel_fallback", extra={"fields": {"kernel": "numpy", "reason": str(exc)}})
        return load_kernel("numpy")
