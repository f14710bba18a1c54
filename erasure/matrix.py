"""The 14x10 generator matrix of the code, taken from reedsolo itself.

reedsolo is the definition of the code: parity of a 10-byte column is
`reedsolo.RSCodec(4).encode(column)[10:]`. Its encoder is linear over GF(2^8), so
encoding the ten unit vectors yields the 4x10 parity matrix column by column; any
fast kernel that multiplies by this matrix produces byte-identical parity, and the
tests check exactly that against reedsolo.
"""

from __future__ import annotations

import functools

import numpy as np
import reedsolo

DATA = 10
PARITY = 4
TOTAL = DATA + PARITY

# reedsolo's defaults, spelled out so a change of defaults upstream cannot change our code.
RS_PARAMS = {"nsym": PARITY, "nsize": 255, "fcr": 0, "prim": 0x11D, "generator": 2, "c_exp": 8}


def reference_codec() -> reedsolo.RSCodec:
    """A reedsolo codec with our parameters (the oracle; ~1 MB/s, small inputs only).

    reedsolo keeps its field tables in module globals that every RSCodec() resets, so
    this re-initialises them to our field each time it is called.
    """
    return reedsolo.RSCodec(**RS_PARAMS)


@functools.cache
def parity_matrix() -> np.ndarray:
    """4x10 uint8 matrix P with parity = P . column over GF(2^8) (read-only)."""
    rs = reference_codec()
    p = np.zeros((PARITY, DATA), dtype=np.uint8)
    for i in range(DATA):
        unit = bytearray(DATA)
        unit[i] = 1
        coded = rs.encode(bytes(unit))
        p[:, i] = np.frombuffer(bytes(coded[DATA:]), dtype=np.uint8)
    p.flags.writeable = False
    return p


@functools.cache
def generator_matrix() -> np.ndarray:
    """14x10 systematic generator [I; P]: shard i of a column is row i . column (read-only)."""
    g = np.vstack([np.eye(DATA, dtype=np.uint8), parity_matrix()])
    g.flags.writeable = False
    return g
