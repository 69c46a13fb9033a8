// half.h - binary32 <-> binary16 conversions. binary32 -> binary16 with round-to-nearest-even (IEEE 754
// convertFormat), bit-identical to numpy's astype(float16): overflow to +-inf (65520 and up
// round to inf), subnormal results, signed zeros, ties to even; NaNs as numpy's
// npy_floatbits_to_halfbits: sign and the top 10 payload bits kept, a payload that would
// vanish becomes 1 (checked against numpy for all 2^32 inputs). The dithered quantizer
// never produces NaN; this only matters for completeness.
#ifndef UDC_CORE_HALF_H_
#define UDC_CORE_HALF_H_

#include <cstdint>
#include <cstring>

#include "core/hd.h"

namespace udc {

UDC_HD inline uint16_t FloatToHalfBits(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;

  if (ax >= 0x7F800000u) {  // inf or NaN
    if (ax == 0x7F800000u) return sign | 0x7C00u;
    uint32_t h = 0x7C00u | ((ax >> 13) & 0x03FFu);
    if (h == 0x7C00u) h = 0x7C01u;  // keep it a NaN
    return static_cast<uint16_t>(sign | h);
  }
  if (ax >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520: rounds to inf
  if (ax >= 0x38800000u) {                         // >= 2^-14: a normal half
    // Rebias the exponent (127 -> 15) and keep 10 mantissa bits; round the 13 dropped bits.
    uint32_t h = ((ax - 0x38000000u) >> 13);
    const uint32_t rest = ax & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent
    return static_cast<uint16_t>(sign | h);
  }
  if (ax <= 0x33000000u) return sign;  // <= 2^-25: rounds to (signed) zero; 2^-25 ties to 0
  // Subnormal half: round(|f| / 2^-24). |f| = m * 2^(e - 150), m with the implicit bit.
  const uint32_t e = ax >> 23;  // 102..112 here
  const uint32_t m = (ax & 0x7FFFFFu) | 0x800000u;
  const uint32_t shift = 126u - e;  // 14..24
  uint32_t h = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (h & 1u))) ++h;  // 0x400 is the smallest normal
  return static_cast<uint16_t>(sign | h);
}

// Exact binary16 -> binary32 (every half is a float; integer bit work, no rounding).
UDC_HD inline float HalfBitsToFloat(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t mant = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {  // subnormal half: normalise
    uint32_t e = 113u;
    while (!(mant & 0x400u)) {
      mant <<= 1;
      --e;
    }
    bits = sign | (e << 23) | ((mant & 0x3FFu) << 13);
  }
  return BitsFloat(bits);
}

}  // namespace udc

#endif  // UDC_CORE_HALF_H_
