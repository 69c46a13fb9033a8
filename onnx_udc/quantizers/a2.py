"""Quantizer 2: dithered hexagonal lattice A2 (FORMAT.md 4.3), in 2 dimensions.

    A2 with minimal distance 1: rows y = j * sqrt(3)/2, columns x = i + j/2. Kept in the
    integer coordinates (x2, t) = (2x, j), where A2 = {x2 = t mod 2}; squared distance
    is proportional to dx2^2 + 3 dt^2 (rational Gram metric)
    nearest point: nearest of the two rectangular cosets (both even / both odd), the closer
                   one in the metric above (the even coset on ties)
    symbols: column index i = (x2 - (t AND 1)) / 2 = floor(x), row index j = t: the rows are
             rectangular cosets, odd rows offset by 1/2 (not the skew basis coefficient
             x - t/2, whose order-0 entropy is about 0.1 bit per weight higher)
    coordinate scales c = step * (1/(2 sqrt 3))^(1/2) for x2, step * (sqrt(3)/2)^(1/2) for t
"""

from __future__ import annotations

import math

import numpy as np

from ..format import QuantizerId
from .base import register
from .lattice import Lattice, LatticeQuantizer, round_half_up


class A2(Lattice):
    name = "a2"
    n = 2
    G = 5.0 / (36.0 * math.sqrt(3.0))
    K = (float(np.float32((2.0 * math.sqrt(3.0)) ** -0.5)), float(np.float32((math.sqrt(3.0) / 2.0) ** 0.5)))
    box = 2  # 2 Z^2 (x2 and t even) is a sublattice

    def nearest(self, y: np.ndarray, unit) -> np.ndarray:
        even = 2 * round_half_up(y, 2 * unit)  # [V, 2]
        odd = 2 * round_half_up(y - unit, 2 * unit) + 1  # [V, 2]
        de, do = y - even * unit, y - odd * unit  # [V, 2]
        d_even = de[:, 0] ** 2 + 3 * de[:, 1] ** 2  # [V]
        d_odd = do[:, 0] ** 2 + 3 * do[:, 1] ** 2
        return np.where((d_odd < d_even)[:, None], odd, even)

    def to_signed(self, p: np.ndarray) -> np.ndarray:
        return np.stack([(p[:, 0] - (p[:, 1] & 1)) >> 1, p[:, 1]], axis=1)

    def from_signed(self, s: np.ndarray) -> np.ndarray:
        return np.stack([2 * s[:, 0] + (s[:, 1] & 1), s[:, 1]], axis=1)


@register
class A2Quantizer(LatticeQuantizer):
    id = QuantizerId.A2
    name = "a2"
    lattice = A2()
