"""GF(2^8) matrix kernel backed by Intel ISA-L (libisal.so.2, Debian package libisal2).

`ec_init_tables` expands a coefficient matrix into ISA-L's multiplication tables and
`ec_encode_data` applies them with SIMD (several GB/s per core). ISA-L uses the same
field polynomial (0x11d) as reedsolo, so feeding it reedsolo's matrix yields
reedsolo's parity. ctypes drops the GIL for the duration of each call, so several
threads encode in parallel.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from erasure.kernels import KernelUnavailable

_LIB_NAMES = ("libisal.so.2", "libisal.so")
_MAX_CALL_LEN = 1 << 30  # ec_encode_data takes an int length; stay far below INT_MAX.


def _load_library() -> ctypes.CDLL:
    candidates = list(_LIB_NAMES)
    found = ctypes.util.find_library("isal")
    if found:
        candidates.append(found)
    errors = []
    for name in candidates:
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
    raise KernelUnavailable(
        "ISA-L (libisal.so.2) is not loadable; install the libisal2 package or set "
        f"SHARDBOX_ERASURE_KERNEL=numpy ({'; '.join(errors)})"
    )


@dataclass(frozen=True)
class IsalTables:
    rows: int
    cols: int
    gftbls: ctypes.Array  # 32 * rows * cols bytes, owned here


class IsalKernel:
    name = "isal"
    table_cache_size = 1024  # tables are 32*rows*10 bytes: tiny

    def __init__(self) -> None:
        lib = _load_library()
        lib.ec_init_tables.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
        lib.ec_init_tables.restype = None
        lib.ec_encode_data.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        lib.ec_encode_data.restype = None
        self._lib = lib
        # For erasure.layout.split_and_apply, which calls ec_encode_data from C per block.
        self.c_function: int = ctypes.cast(lib.ec_encode_data, ctypes.c_void_p).value or 0

    def c_tables(self, tables: IsalTables) -> int:
        """Address of the prepared tables, for c_function."""
        return ctypes.addressof(tables.gftbls)

    def prepare(self, matrix: np.ndarray) -> IsalTables:
        rows, cols = matrix.shape
        coeffs = np.ascontiguousarray(matrix, dtype=np.uint8)
        gftbls = (ctypes.c_ubyte * (32 * rows * cols))()
        self._lib.ec_init_tables(cols, rows, coeffs.ctypes.data, ctypes.addressof(gftbls))
        return IsalTables(rows, cols, gftbls)

    def apply(self, tables: IsalTables, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        if len(inputs) != tables.cols or len(outputs) != tables.rows:
            raise ValueError(f"kernel wants {tables.cols} inputs and {tables.rows} outputs")
        length = len(inputs[0])
        in_ptrs = [_address(a, length, writable=False) for a in inputs]
        out_ptrs = [_address(a, length, writable=True) for a in outputs]
        in_arr = (ctypes.c_void_p * tables.cols)()
        out_arr = (ctypes.c_void_p * tables.rows)()
        gftbls = ctypes.addressof(tables.gftbls)
        for start in range(0, length, _MAX_CALL_LEN):
            step = min(_MAX_CALL_LEN, length - start)
            in_arr[:] = [p + start for p in in_ptrs]
            out_arr[:] = [p + start for p in out_ptrs]
            self._lib.ec_encode_data(step, tables.cols, tables.rows, gftbls, in_arr, out_arr)


def _address(a: np.ndarray, length: int, *, writable: bool) -> int:
    """Start address of a contiguous uint8 row of exactly `length` bytes."""
    if a.dtype != np.uint8 or a.ndim != 1 or len(a) != length or not a.flags.c_contiguous:
        raise ValueError("kernel rows must be contiguous 1-D uint8 arrays of equal length")
    if writable and not a.flags.writeable:
        raise ValueError("kernel output rows must be writable")
    return a.__array_interface__["data"][0]
