"""Arithmetic in GF(2^8) with the field polynomial 0x11d and generator 2.

These are the same field and generator reedsolo uses by default (and ISA-L's
`gf_mul`), so matrices built here can be fed to either kernel. Everything here works
on tiny matrices (at most 14x10), once per erasure pattern, so clarity beats speed;
the bulk data path never calls into this module per byte.
"""

from __future__ import annotations

import numpy as np

POLY = 0x11D
GENERATOR = 2


def _build_tables() -> tuple[list[int], list[int]]:
    exp = [0] * 512
    log = [0] * 256
    x = 1
    for i in range(255):
        exp[i] = x
        log[x] = i
        x <<= 1
        if x & 0x100:
            x ^= POLY
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return exp, log


EXP, LOG = _build_tables()


def mul(a: int, b: int) -> int:
    """Product of two field elements."""
    if a == 0 or b == 0:
        return 0
    return EXP[LOG[a] + LOG[b]]


def inv(a: int) -> int:
    """Multiplicative inverse; 0 has none."""
    if a == 0:
        raise ZeroDivisionError("0 has no inverse in GF(2^8)")
    return EXP[255 - LOG[a]]


def _build_mul_table() -> np.ndarray:
    """MUL_TABLE[a, x] == mul(a, x), as a 256x256 uint8 array (64 KiB)."""
    log = np.array(LOG, dtype=np.int64)
    exp = np.array(EXP, dtype=np.uint8)
    table = exp[log[:, None] + log[None, :]]
    table[0, :] = 0
    table[:, 0] = 0
    return table


MUL_TABLE = _build_mul_table()


def mat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Matrix product over GF(2^8) of uint8 matrices a (r x k) and b (k x c)."""
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"cannot multiply {a.shape} by {b.shape}")
    out = np.zeros((a.shape[0], b.shape[1]), dtype=np.uint8)
    for k in range(a.shape[1]):
        # Row-broadcast product of column k of a with row k of b, xor-accumulated.
        out ^= MUL_TABLE[a[:, k][:, None], b[k, :][None, :]]
    return out


def mat_inv(m: np.ndarray) -> np.ndarray:
    """Inverse of a square uint8 matrix over GF(2^8) by Gauss-Jordan elimination.

    Raises ValueError if the matrix is singular (cannot happen for square submatrices
    of an MDS generator, so it signals a bug or a wrong matrix).
    """
    size = m.shape[0]
    if m.shape != (size, size):
        raise ValueError(f"matrix must be square, got {m.shape}")
    work = [[int(v) for v in row] + [1 if i == j else 0 for j in range(size)] for i, row in enumerate(m)]
    for col in range(size):
        pivot = next((r for r in range(col, size) if work[r][col]), None)
        if pivot is None:
            raise ValueError("matrix is singular over GF(2^8)")
        work[col], work[pivot] = work[pivot], work[col]
        scale = inv(work[col][col])
        work[col] = [mul(v, scale) for v in work[col]]
        for r in range(size):
            factor = work[r][col]
            if r != col and factor:
                pivot_row = work[col]
                work[r] = [v ^ mul(factor, p) for v, p in zip(work[r], pivot_row, strict=True)]
    return np.array([row[size:] for row in work], dtype=np.uint8)
