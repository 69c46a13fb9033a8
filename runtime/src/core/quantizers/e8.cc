// Quantizer 4, dithered lattice E8 (FORMAT.md 4.5) = D8 u (D8 + 1/2), in doubled
// coordinates P = 2e: all P_j of one parity c, sum P = 0 mod 4.
//
//   symbols S = (d_0 .. d_6, e): c = e & 1, d_7 = 2 (e >> 1) + parity(d_0 + .. + d_6),
//                                P_j = 2 d_j + c
//   c_j = step * 0.5 (doubled coordinates: cell volume step^8)
#include "core/quantizers/lattice.h"

namespace udc {
namespace {

struct E8 {
  static constexpr int kN = 8;
  static constexpr int64_t kBox = 4;  // 4 Z^8 is a sublattice of 2 E8
  static constexpr const char* kName = "e8";
  static constexpr float kScale[kN] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};

  // Nearest of 2 D8 and 2 D8 + 1 (each by Conway-Sloane), the closer one; 2 D8 on ties.
  static void Nearest(const int64_t* y, int64_t unit, int64_t* p) {
    int64_t even[kN], odd[kN], shifted[kN];
    for (int j = 0; j < kN; ++j) shifted[j] = y[j] - unit;
    lattice::NearestDn<kN>(y, 2 * unit, even);
    lattice::NearestDn<kN>(shifted, 2 * unit, odd);
    int64_t d_even = 0, d_odd = 0;
    for (int j = 0; j < kN; ++j) {
      even[j] = 2 * even[j];
      odd[j] = 2 * odd[j] + 1;
      const int64_t de = y[j] - even[j] * unit, dodd = y[j] - odd[j] * unit;
      d_even += de * de;
      d_odd += dodd * dodd;
    }
    const int64_t* best = d_odd < d_even ? odd : even;
    for (int j = 0; j < kN; ++j) p[j] = best[j];
  }

  static void FromSigned(const int64_t* s, int64_t* p) {
    const int64_t e = s[kN - 1];
    const int64_t coset = e & 1;
    int64_t sum = 0;
    for (int j = 0; j < kN - 1; ++j) {
      p[j] = 2 * s[j] + coset;
      sum += s[j];
    }
    p[kN - 1] = 2 * (2 * (e >> 1) + (sum & 1)) + coset;
  }
};

}  // namespace

const Quantizer& LatticeE8Quantizer() {
  static const lattice::LatticeQuantizer<E8> kE8;
  return kE8;
}

}  // namespace udc
