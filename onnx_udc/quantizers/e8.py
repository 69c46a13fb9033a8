"""Quantizer 4: dithered lattice E8 (FORMAT.md 4.5), Gosset lattice in 8 dimensions.

    E8 = D8 u (D8 + 1/2), det 1, G = 929/12960; kept in doubled coordinates P = 2e:
    all P_j of one parity c (the coset), sum P = 0 mod 4
    nearest point: Conway-Sloane (nearest of D8 and of D8 + 1/2, the closer one; D8 on ties)
    symbols: d = (P - c) / 2 in D8 as for D_n, with the coset bit folded into the last:
             d_0 .. d_6, 2 m + c where m = (d_7 - parity(d_0 + .. + d_6)) / 2
    coordinate scale c = step / 2 (doubled coordinates, cell volume step^8)
"""

from __future__ import annotations

import numpy as np

from ..format import QuantizerId
from .base import register
from .lattice import Lattice, LatticeQuantizer, nearest_dn


class E8(Lattice):
    name = "e8"
    n = 8
    G = 929.0 / 12960.0
    K = (0.5,) * 8
    box = 4  # 4 Z^8 = 2 * (2 Z^8) is a sublattice of 2 E8

    def nearest(self, y: np.ndarray, unit) -> np.ndarray:
        even = 2 * nearest_dn(y, 2 * unit)  # [V, 8] nearest of 2 D8
        odd = 2 * nearest_dn(y - unit, 2 * unit) + 1  # [V, 8] nearest of 2 D8 + 1
        d_even = ((y - even * unit) ** 2).sum(axis=1)  # [V]
        d_odd = ((y - odd * unit) ** 2).sum(axis=1)  # [V]
        return np.where((d_odd < d_even)[:, None], odd, even)

    def to_signed(self, p: np.ndarray) -> np.ndarray:
        coset = p[:, :1] & 1  # [V, 1]
        d = (p - coset) >> 1  # [V, 8] a point of D8
        m = (d[:, -1] - (d[:, :-1].sum(axis=1) & 1)) >> 1
        d[:, -1] = 2 * m + coset[:, 0]
        return d

    def from_signed(self, s: np.ndarray) -> np.ndarray:
        e = s[:, -1]
        coset = e & 1  # [V]
        d = s.copy()  # [V, 8]
        d[:, -1] = 2 * (e >> 1) + (s[:, :-1].sum(axis=1) & 1)
        return 2 * d + coset[:, None]


@register
class E8Quantizer(LatticeQuantizer):
    id = QuantizerId.E8
    name = "e8"
    lattice = E8()
