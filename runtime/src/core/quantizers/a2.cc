// Quantizer 2, dithered hexagonal lattice A2 (FORMAT.md 4.3), in the integer coordinates
// (x2, t) = (2x, row): A2 = {x2 = t mod 2}, squared distance ~ dx2^2 + 3 dt^2.
//
//   symbols S = (i, j): x2 = 2 i + (j AND 1), t = j   (column index i = floor(x), row index j)
//   c_0 = step * 0x1.131704p-1 ((2 sqrt 3)^(-1/2)),  c_1 = step * 0x1.dc783ep-1 ((sqrt(3)/2)^(1/2))
#include "core/quantizers/lattice.h"

namespace udc {
namespace {

struct A2 {
  static constexpr int kN = 2;
  static constexpr int64_t kBox = 2;  // 2 Z^2 (x2, t both even) is a sublattice
  static constexpr const char* kName = "a2";
  static constexpr float kScale[kN] = {0x1.131704p-1f, 0x1.dc783ep-1f};

  // Nearest of the rectangular cosets (both even / both odd), the closer; even on ties.
  static void Nearest(const int64_t* y, int64_t unit, int64_t* p) {
    int64_t even[kN], odd[kN];
    for (int j = 0; j < kN; ++j) {
      even[j] = 2 * lattice::RoundHalfUp(y[j], 2 * unit);
      odd[j] = 2 * lattice::RoundHalfUp(y[j] - unit, 2 * unit) + 1;
    }
    const int64_t e0 = y[0] - even[0] * unit, e1 = y[1] - even[1] * unit;
    const int64_t o0 = y[0] - odd[0] * unit, o1 = y[1] - odd[1] * unit;
    const bool use_odd = o0 * o0 + 3 * o1 * o1 < e0 * e0 + 3 * e1 * e1;
    p[0] = use_odd ? odd[0] : even[0];
    p[1] = use_odd ? odd[1] : even[1];
  }

  static void FromSigned(const int64_t* s, int64_t* p) {
    p[0] = 2 * s[0] + (s[1] & 1);
    p[1] = s[1];
  }
};

}  // namespace

const Quantizer& LatticeA2Quantizer() {
  static const lattice::LatticeQuantizer<A2> kA2;
  return kA2;
}

}  // namespace udc
