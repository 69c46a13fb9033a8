"""Symbol layer of FORMAT.md section 3: zigzag codes and the planar byte layout."""

from __future__ import annotations

import numpy as np

_UINT = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}


def zigzag(q: np.ndarray) -> np.ndarray:
    """Signed indices -> unsigned codes: 0,-1,1,-2,2 -> 0,1,2,3,4. int64 [n] -> uint64 [n]."""
    q = q.astype(np.int64, copy=False)
    return ((q << 1) ^ (q >> 63)).view(np.uint64)


def unzigzag(s: np.ndarray) -> np.ndarray:
    """Unsigned codes -> signed indices. uint{8,16,32} [n] -> int32 [n]."""
    s = s.astype(np.uint32, copy=False)
    return ((s >> np.uint32(1)).astype(np.int32)) ^ -((s & np.uint32(1)).astype(np.int32))


def width_for(max_code: int) -> int:
    """Smallest symbol width (1, 2 or 4 bytes) that holds ``max_code``."""
    for width in (1, 2, 4):
        if max_code < (1 << (8 * width)):
            return width
    raise OverflowError(f"symbol {max_code} does not fit in 4 bytes")


def to_planar(symbols: np.ndarray, width: int) -> bytes:
    """uint [n] -> n*width bytes, byte plane k holding byte k of every symbol."""
    arr = np.ascontiguousarray(symbols.astype(_UINT[width], copy=False))
    if width == 1:
        return arr.tobytes()
    return np.ascontiguousarray(arr.view(np.uint8).reshape(-1, width).T).tobytes()


def from_planar(data: bytes | memoryview, numel: int, width: int) -> np.ndarray:
    """n*width planar bytes -> uint [n] of the given width (little-endian)."""
    planes = np.frombuffer(data, dtype=np.uint8, count=numel * width)
    if width == 1:
        return planes.copy()
    return np.ascontiguousarray(planes.reshape(width, numel).T).view(_UINT[width]).reshape(numel)
