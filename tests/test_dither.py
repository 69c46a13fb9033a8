"""The dither generator against an independent pure-Python implementation of FORMAT.md."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from onnx_udc.format.dither import dither, dither_chunk

MASK = (1 << 64) - 1


def reference(seed: int, i: int) -> float:
    x = (seed + (i + 1) * 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    x ^= x >> 31
    return (x >> 40) / 2**24 - 0.5


@given(st.integers(0, MASK), st.integers(0, 2**40), st.integers(1, 64))
def test_matches_pure_python(seed, start, count):
    got = dither_chunk(seed, start, count)
    assert got.dtype == np.float32
    want = np.array([reference(seed, start + k) for k in range(count)], dtype=np.float64)
    assert np.array_equal(got.astype(np.float64), want)  # exact: 24-bit values


def test_known_values():
    # Pinned so an accidental change of the generator is caught even if both sides drift.
    got = dither(0, 4).tolist()
    want = [reference(0, i) for i in range(4)]
    assert got == want
    assert got == [0.38331079483032227, -0.06847202777862549, -0.4735662341117859, 0.47088193893432617]


def test_range_and_uniformity():
    d = dither(12345, 1 << 20)
    assert d.min() >= -0.5 and d.max() < 0.5
    assert abs(float(d.mean())) < 2e-3
    assert abs(float(d.var()) - 1 / 12) < 1e-3
    hist, _ = np.histogram(d, bins=16, range=(-0.5, 0.5))
    assert hist.min() > 0.95 * hist.mean()


def test_chunking_is_invisible():
    full = dither(7, 3 * (1 << 20) + 5)
    assert np.array_equal(full[(1 << 20) - 3 : (1 << 20) + 3], dither_chunk(7, (1 << 20) - 3, 6))
