// Quantizer 2, dithered hexagonal lattice A2 (FORMAT.md 4.3), in the integer coordinates
// (x2, t) = (2x, row): A2 = {x2 = t mod 2}, squared distance ~ dx2^2 + 3 dt^2.
//
//   symbols S = (i, j): x2 = 2 i + (j AND 1), t = j   (column index i = floor(x), row index j)
//   c_0 = step * 0x1.131704p-1 ((2 sqrt 3)^(-1/2)),  c_1 = step * 0x1.dc783ep-1 ((sqrt(3)/2)^(1/2))
#include "core/quantizers/lattice.h"

namespace udc {

const Quantizer& LatticeA2Quantizer() {
  static const lattice::LatticeQuantizer<lattice::A2> kA2;
  return kA2;
}

}  // namespace udc
