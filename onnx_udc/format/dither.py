"""The shared pseudo-random dither of FORMAT.md section 4.1.

Counter-based: element ``i`` of a tensor gets ``d_i`` from ``(seed, i)`` alone, so an
encoder, a CPU decoder and a GPU thread all regenerate the same value independently.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_CHUNK = 1 << 20


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on a uint64 array (wrap-around arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def dither_chunk(seed: int, start: int, count: int) -> np.ndarray:
    """Dither of elements ``start .. start+count-1``: float32 [count] in [-0.5, 0.5)."""
    with np.errstate(over="ignore"):
        counter = np.arange(start + 1, start + count + 1, dtype=np.uint64)  # [count]
        x = mix64(np.uint64(seed) + counter * _GOLDEN)  # [count]
    # x >> 40 has 24 bits: exact in float32, and so are the scaling and the shift.
    return ((x >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)) - np.float32(0.5)


def dither(seed: int, numel: int) -> np.ndarray:
    """Dither of a whole tensor in row-major order: float32 [numel]."""
    out = np.empty(numel, dtype=np.float32)
    for start in range(0, numel, _CHUNK):
        count = min(_CHUNK, numel - start)
        out[start : start + count] = dither_chunk(seed, start, count)
    return out


def derive_seed(model_seed: int, name: str) -> int:
    """Per-tensor seed from the model seed and the tensor name (encoder-side convention)."""
    import zlib

    with np.errstate(over="ignore"):
        value = np.uint64(model_seed & 0xFFFFFFFFFFFFFFFF) + np.uint64(zlib.crc32(name.encode())) * _GOLDEN
        return int(mix64(np.array([value], dtype=np.uint64))[0])
