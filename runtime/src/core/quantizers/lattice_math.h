// lattice_math.h - the integer geometry of the dithered lattice quantizers (FORMAT.md
// 4.2-4.5): nearest points, index maps and the Voronoi dither. Header-only and UDC_HD, so
// the CPU decoder (lattice.h) and the CUDA kernels (core/reconstruct.h) share one body.
// A geometry becomes a quantizer through its line in quantizers/list.h (id, name).
//
// A geometry G provides kN, kBox, kScale[kN] (host only) and
//   static void Nearest(const int64_t* y, int64_t unit, int64_t* p);  // exact, integers
//   static void FromSigned(const int64_t* s, int64_t* p);             // any int32 input
#ifndef UDC_CORE_QUANTIZERS_LATTICE_MATH_H_
#define UDC_CORE_QUANTIZERS_LATTICE_MATH_H_

#include <cstdint>

#include "core/dither.h"
#include "core/hd.h"

namespace udc {
namespace lattice {

constexpr int kDitherBits = 24;

// floor(a / b) for b > 0.
UDC_HD constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

// floor(y / unit + 1/2): ties go up (unit even).
UDC_HD constexpr int64_t RoundHalfUp(int64_t y, int64_t unit) { return FloorDiv(y + unit / 2, unit); }

// Conway-Sloane nearest point of D_N for y (coordinates times unit): round every
// coordinate; if the sum is odd, re-round the first coordinate farthest from its integer
// the other way (up when its offset is >= 0).
template <int N>
UDC_HD inline void NearestDn(const int64_t* y, int64_t unit, int64_t* f) {
  int64_t sum = 0, worst_abs = -1, worst_delta = 0;
  int worst = 0;
  for (int j = 0; j < N; ++j) {
    f[j] = RoundHalfUp(y[j], unit);
    const int64_t delta = y[j] - f[j] * unit;
    const int64_t abs = delta < 0 ? -delta : delta;
    if (abs > worst_abs) {
      worst_abs = abs;
      worst = j;
      worst_delta = delta;
    }
    sum += f[j];
  }
  if (sum & 1) f[worst] += worst_delta >= 0 ? 1 : -1;
}

// Vector v's dither u[0..N) (exact binary32).
template <class G>
UDC_HD inline void VectorDither(uint64_t seed, uint64_t v, float* u) {
  constexpr int64_t kUnit = (int64_t{1} << kDitherBits) / G::kBox;
  constexpr float kInvUnit = 1.0f / static_cast<float>(kUnit);  // a power of two: exact
  int64_t k[G::kN], q[G::kN];
  for (int j = 0; j < G::kN; ++j) {
    k[j] = static_cast<int64_t>(SplitMix64At(seed, v * G::kN + j) >> (64 - kDitherBits));
  }
  G::Nearest(k, kUnit, q);
  for (int j = 0; j < G::kN; ++j) u[j] = static_cast<float>(k[j] - q[j] * kUnit) * kInvUnit;
}

// A2 (FORMAT.md 4.3), in the integer coordinates (x2, t) = (2x, row): A2 = {x2 = t mod 2},
// squared distance ~ dx2^2 + 3 dt^2.
//   symbols S = (i, j): x2 = 2 i + (j AND 1), t = j   (column index i = floor(x), row index j)
//   c_0 = step * 0x1.131704p-1 ((2 sqrt 3)^(-1/2)),  c_1 = step * 0x1.dc783ep-1 ((sqrt(3)/2)^(1/2))
struct A2 {
  static constexpr int kN = 2;
  static constexpr int64_t kBox = 2;  // 2 Z^2 (x2, t both even) is a sublattice
  static constexpr float kScale[kN] = {0x1.131704p-1f, 0x1.dc783ep-1f};

  // Nearest of the rectangular cosets (both even / both odd), the closer; even on ties.
  UDC_HD static void Nearest(const int64_t* y, int64_t unit, int64_t* p) {
    int64_t even[kN], odd[kN];
    for (int j = 0; j < kN; ++j) {
      even[j] = 2 * RoundHalfUp(y[j], 2 * unit);
      odd[j] = 2 * RoundHalfUp(y[j] - unit, 2 * unit) + 1;
    }
    const int64_t e0 = y[0] - even[0] * unit, e1 = y[1] - even[1] * unit;
    const int64_t o0 = y[0] - odd[0] * unit, o1 = y[1] - odd[1] * unit;
    const bool use_odd = o0 * o0 + 3 * o1 * o1 < e0 * e0 + 3 * e1 * e1;
    p[0] = use_odd ? odd[0] : even[0];
    p[1] = use_odd ? odd[1] : even[1];
  }

  UDC_HD static void FromSigned(const int64_t* s, int64_t* p) {
    p[0] = 2 * s[0] + (s[1] & 1);
    p[1] = s[1];
  }
};

// D4 (FORMAT.md 4.4): {p in Z^4 : sum p even}.
//   symbols S = (p_0, p_1, p_2, m):  p_3 = 2 m + parity(p_0 + p_1 + p_2)
//   c_j = step * 0x1.ae89fap-1 (binary32 2^(-1/4): cell volume step^4)
struct D4 {
  static constexpr int kN = 4;
  static constexpr int64_t kBox = 2;  // 2 Z^4 is a sublattice of D4
  static constexpr float kScale[kN] = {0x1.ae89fap-1f, 0x1.ae89fap-1f, 0x1.ae89fap-1f, 0x1.ae89fap-1f};

  UDC_HD static void Nearest(const int64_t* y, int64_t unit, int64_t* p) { NearestDn<kN>(y, unit, p); }

  UDC_HD static void FromSigned(const int64_t* s, int64_t* p) {
    for (int j = 0; j < kN - 1; ++j) p[j] = s[j];
    p[kN - 1] = 2 * s[kN - 1] + ((s[0] + s[1] + s[2]) & 1);
  }
};

// E8 (FORMAT.md 4.5) = D8 u (D8 + 1/2), in doubled coordinates P = 2e: all P_j of one
// parity c, sum P = 0 mod 4.
//   symbols S = (d_0 .. d_6, e): c = e & 1, d_7 = 2 (e >> 1) + parity(d_0 + .. + d_6),
//                                P_j = 2 d_j + c
//   c_j = step * 0.5 (doubled coordinates: cell volume step^8)
struct E8 {
  static constexpr int kN = 8;
  static constexpr int64_t kBox = 4;  // 4 Z^8 is a sublattice of 2 E8
  static constexpr float kScale[kN] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f, 0.5f};

  // Nearest of 2 D8 and 2 D8 + 1 (each by Conway-Sloane), the closer one; 2 D8 on ties.
  UDC_HD static void Nearest(const int64_t* y, int64_t unit, int64_t* p) {
    int64_t even[kN], odd[kN], shifted[kN];
    for (int j = 0; j < kN; ++j) shifted[j] = y[j] - unit;
    NearestDn<kN>(y, 2 * unit, even);
    NearestDn<kN>(shifted, 2 * unit, odd);
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

  UDC_HD static void FromSigned(const int64_t* s, int64_t* p) {
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

}  // namespace lattice
}  // namespace udc

#endif  // UDC_CORE_QUANTIZERS_LATTICE_MATH_H_
