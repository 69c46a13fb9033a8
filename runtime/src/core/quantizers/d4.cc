// Quantizer 3, dithered lattice D4 (FORMAT.md 4.4): {p in Z^4 : sum p even}.
//
//   symbols S = (p_0, p_1, p_2, m):  p_3 = 2 m + parity(p_0 + p_1 + p_2)
//   c_j = step * 0x1.ae89fap-1 (binary32 2^(-1/4): cell volume step^4)
#include "core/quantizers/lattice.h"

namespace udc {
namespace {

struct D4 {
  static constexpr int kN = 4;
  static constexpr int64_t kBox = 2;  // 2 Z^4 is a sublattice of D4
  static constexpr const char* kName = "d4";
  static constexpr float kScale[kN] = {0x1.ae89fap-1f, 0x1.ae89fap-1f, 0x1.ae89fap-1f, 0x1.ae89fap-1f};

  static void Nearest(const int64_t* y, int64_t unit, int64_t* p) { lattice::NearestDn<kN>(y, unit, p); }

  static void FromSigned(const int64_t* s, int64_t* p) {
    for (int j = 0; j < kN - 1; ++j) p[j] = s[j];
    p[kN - 1] = 2 * s[kN - 1] + ((s[0] + s[1] + s[2]) & 1);
  }
};

}  // namespace

const Quantizer& LatticeD4Quantizer() {
  static const lattice::LatticeQuantizer<D4> kD4;
  return kD4;
}

}  // namespace udc
