"""Shared-codeword refinement: a small table of refined reconstruction values (FORMAT.md 4.6).

The weights whose (dithered) vectors map to the same lattice point share one codeword.
By default the codeword is the point itself; a table may replace it for a few points:

    symbols of one vector (u32 [n]) --lookup--> row k of the table, or none
    decoder: (table.values[k] - u) * c   instead of   (float32(point) - u) * c

Values are in the lattice's integer coordinates (the units of ``float32(point)``), so an
unrefined entry would hold the point itself. ``refine`` computes them from the weights
alone (least squares: the centroid of w/c + u over the vectors mapped to the point);
any finite float32 values are valid, so values computed from data can be stored later.

    table bytes: u32 K, then K entries of (n x u32 key symbols, n x f32 values),
                 keys strictly increasing in lexicographic order
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import FormatError

MAX_ENTRIES = 1 << 16  # a decoder rejects larger tables
BITS_PER_COORD = 64  # one u32 key symbol + one f32 value per coordinate


@dataclass(frozen=True)
class CodewordTable:
    keys: np.ndarray  # uint32 [K, n], strictly increasing (lexicographic)
    values: np.ndarray  # float32 [K, n], finite

    @property
    def size(self) -> int:
        return int(self.keys.shape[0])


@dataclass(frozen=True)
class TableLayout:
    """How one blob's symbols become codewords (scalar: n = 1, identity order): what an
    encoder needs to fit a table without knowing the quantizer (Quantizer.table_layout)."""

    n: int  # coordinates per vector (table key width)
    order: tuple[int, ...]  # the stream is transpose(w, order) read row-major
    scales: np.ndarray  # float64 [n]: c_j, the decoder's coordinate scale
    table: CodewordTable  # the blob's present table
    points: Callable[[np.ndarray], np.ndarray]  # codes uint [V, n] -> default codewords float32 [V, n]
    pack: Callable[[CodewordTable], bytes]  # table -> params bytes


def empty(n: int) -> CodewordTable:
    return CodewordTable(np.zeros((0, n), np.uint32), np.zeros((0, n), np.float32))


def packed_len(entries: int, n: int) -> int:
    return 4 + entries * 8 * n


def pack(table: CodewordTable) -> bytes:
    """table -> bytes (u32 K, then per entry n u32 keys and n f32 values, little-endian)."""
    k, n = table.keys.shape
    rows = np.empty((k, 2 * n), dtype="<u4")  # [K, 2n]
    rows[:, :n] = table.keys
    rows[:, n:] = np.ascontiguousarray(table.values, dtype="<f4").view("<u4")
    return struct.pack("<I", k) + rows.tobytes()


def _strictly_increasing(keys: np.ndarray) -> bool:
    """keys uint32 [K, n]: every row lexicographically greater than the previous one."""
    if keys.shape[0] < 2:
        return True
    a, b = keys[:-1].astype(np.int64), keys[1:].astype(np.int64)  # [K-1, n]
    differ = a != b
    first = np.argmax(differ, axis=1)  # [K-1] first differing column
    rows = np.arange(a.shape[0])
    return bool(np.all(differ.any(axis=1) & (b[rows, first] > a[rows, first])))


def parse(data: bytes | memoryview, n: int) -> CodewordTable:
    """bytes -> table; FormatError unless the length, order and values are valid."""
    data = memoryview(data).cast("B")
    if len(data) < 4:
        raise FormatError(f"codeword table has {len(data)} bytes, needs at least 4 for its count")
    (k,) = struct.unpack_from("<I", data, 0)
    if k > MAX_ENTRIES:
        raise FormatError(f"codeword table has {k} entries, at most {MAX_ENTRIES} allowed")
    if len(data) != packed_len(k, n):
        raise FormatError(
            f"codeword table of {k} entries of dimension {n} needs {packed_len(k, n)} bytes, has {len(data)}"
        )
    rows = np.frombuffer(data, dtype="<u4", offset=4).reshape(k, 2 * n)  # [K, 2n]
    keys = rows[:, :n].astype(np.uint32)
    values = rows[:, n:].copy().view("<f4").astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise FormatError("codeword table holds a value that is not finite")
    if not _strictly_increasing(keys):
        raise FormatError("codeword table keys are not strictly increasing")
    return CodewordTable(keys, values)


def lookup(table: CodewordTable, symbols: np.ndarray) -> np.ndarray:
    """symbols uint [V, n] -> int64 [V]: the table row of each vector, -1 where none."""
    v = symbols.shape[0]
    if table.size == 0 or v == 0:
        return np.full(v, -1, dtype=np.int64)
    both = np.concatenate([table.keys.astype(np.uint32), symbols.astype(np.uint32)])  # [K+V, n]
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    row_of = np.full(int(inverse.max()) + 1, -1, dtype=np.int64)
    row_of[inverse[: table.size]] = np.arange(table.size)
    return row_of[inverse[table.size :]]


def refine(
    symbols: np.ndarray, y: np.ndarray, base: np.ndarray, scale: np.ndarray, mse: float, max_entries: int
) -> CodewordTable:
    """Least-squares codewords from the weights alone.

    symbols uint [V, n]: each vector's key; y float64 [V, n]: w / c + u, the dithered
    vector in lattice coordinates; base float64 [V, n]: float32(point), the default
    codeword; scale float64 [n]: c, the coordinate scale; mse: the error per weight at
    this step. A point's best codeword is the centroid m of its y (least squares); it
    saves count * sum_j (c_j (base_j - m_j))^2 of squared error. An entry costs
    BITS_PER_COORD * n bits; spending them on a finer step instead would save
    2 ln 2 * mse per bit (dD/dR at high rate), so a point enters the table only when
    its saving is larger, best first, at most ``max_entries``.
    """
    n = symbols.shape[1]
    if symbols.shape[0] == 0 or max_entries <= 0:
        return empty(n)
    keys, inverse, counts = np.unique(symbols.astype(np.uint32), axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    groups = keys.shape[0]
    sums = np.stack([np.bincount(inverse, weights=y[:, j], minlength=groups) for j in range(n)], axis=1)  # [U, n]
    first = np.zeros(keys.shape[0], dtype=np.int64)
    first[inverse[::-1]] = np.arange(inverse.size)[::-1]  # one member of each group
    centroid = (sums / counts[:, None]).astype(np.float32)  # [U, n]
    default = base[first]  # [U, n]
    saving = counts * (((centroid.astype(np.float64) - default) * scale) ** 2).sum(axis=1)  # [U]
    cost = 2.0 * math.log(2.0) * mse * BITS_PER_COORD * n
    order = np.argsort(-saving, kind="stable")[: min(max_entries, MAX_ENTRIES)]
    chosen = np.sort(order[saving[order] > cost])  # np.unique sorted keys: keep that order
    return CodewordTable(keys[chosen], centroid[chosen])
