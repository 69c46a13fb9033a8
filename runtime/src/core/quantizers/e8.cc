// Quantizer 4, dithered lattice E8 (FORMAT.md 4.5) = D8 u (D8 + 1/2), in doubled
// coordinates P = 2e: all P_j of one parity c, sum P = 0 mod 4.
//
//   symbols S = (d_0 .. d_6, e): c = e & 1, d_7 = 2 (e >> 1) + parity(d_0 + .. + d_6),
//                                P_j = 2 d_j + c
//   c_j = step * 0.5 (doubled coordinates: cell volume step^8)
#include "core/quantizers/lattice.h"

namespace udc {

const Quantizer& LatticeE8Quantizer() {
  static const lattice::LatticeQuantizer<lattice::E8> kE8;
  return kE8;
}

}  // namespace udc
