// dither.h - the dither of the dithered uniform scalar quantizer (FORMAT.md 4.1) and the
// zigzag index code. Header-only and branch-free so any thread (or a GPU kernel) can
// compute element i alone.
#ifndef UDC_CORE_DITHER_H_
#define UDC_CORE_DITHER_H_

#include <cstdint>

#include "core/hd.h"

namespace udc {

// SplitMix64's output function at counter i + 1, wrap-around u64 arithmetic.
UDC_HD constexpr uint64_t SplitMix64At(uint64_t seed, uint64_t i) {
  uint64_t x = seed + (i + 1) * 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// d_i = float32(x >> 40) * 2^-24 - 0.5, in units of the step; exact in binary32, in [-0.5, 0.5).
UDC_HD inline float Dither(uint64_t seed, uint64_t i) {
  const float k = static_cast<float>(static_cast<uint32_t>(SplitMix64At(seed, i) >> 40));
  return k * 0x1p-24f - 0.5f;
}

// Zigzag decode: 0, 1, 2, 3, 4, ... -> 0, -1, 1, -2, 2, ...
UDC_HD constexpr int32_t ZigzagDecode(uint32_t s) {
  return static_cast<int32_t>((s >> 1) ^ (0u - (s & 1u)));
}

// Zigzag encode (tests and encoders): the inverse of ZigzagDecode.
UDC_HD constexpr uint32_t ZigzagEncode(int32_t q) {
  return (static_cast<uint32_t>(q) << 1) ^ static_cast<uint32_t>(q >> 31);
}

}  // namespace udc

#endif  // UDC_CORE_DITHER_H_
