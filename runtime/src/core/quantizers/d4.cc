// Quantizer 3, dithered lattice D4 (FORMAT.md 4.4): {p in Z^4 : sum p even}.
//
//   symbols S = (p_0, p_1, p_2, m):  p_3 = 2 m + parity(p_0 + p_1 + p_2)
//   c_j = step * 0x1.ae89fap-1 (binary32 2^(-1/4): cell volume step^4)
#include "core/quantizers/lattice.h"

namespace udc {

const Quantizer& LatticeD4Quantizer() {
  static const lattice::LatticeQuantizer<lattice::D4> kD4;
  return kD4;
}

}  // namespace udc
