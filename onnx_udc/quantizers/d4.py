"""Quantizer 3: dithered lattice D4 (FORMAT.md 4.4), checkerboard lattice in 4 dimensions.

    D4 = {p in Z^4 : p_0 + p_1 + p_2 + p_3 even}, det 2, G = 0.0766032
    nearest point: Conway-Sloane (round; if the sum is odd, re-round the worst coordinate)
    symbols: p_0, p_1, p_2 and m = (p_3 - parity(p_0 + p_1 + p_2)) / 2
    coordinate scale c = step * 2^(-1/4) (cell volume step^4)
"""

from __future__ import annotations

import numpy as np

from ..format import QuantizerId
from .base import register
from .lattice import Lattice, LatticeQuantizer, nearest_dn


class Dn(Lattice):
    """D_n in its own integer coordinates; the last symbol is halved with the others' parity."""

    box = 2  # 2 Z^n is a sublattice of D_n

    def nearest(self, y: np.ndarray, unit) -> np.ndarray:
        return nearest_dn(y, unit)

    def to_signed(self, p: np.ndarray) -> np.ndarray:
        s = p.copy()  # [V, n]
        s[:, -1] = (p[:, -1] - (p[:, :-1].sum(axis=1) & 1)) >> 1
        return s

    def from_signed(self, s: np.ndarray) -> np.ndarray:
        p = s.copy()  # [V, n]
        p[:, -1] = 2 * s[:, -1] + (s[:, :-1].sum(axis=1) & 1)
        return p


class D4(Dn):
    name = "d4"
    n = 4
    G = 0.0766032
    K = (float(np.float32(2.0**-0.25)),) * 4


@register
class D4Quantizer(LatticeQuantizer):
    id = QuantizerId.D4
    name = "d4"
    lattice = D4()
