// scalar_kernels.h - the dithered scalar formula (FORMAT.md 4.1, 4.8) over a run of
// elements, in three implementations that produce the same bytes (core_tests compares them):
//
//   element i:  s = planar symbol i (width W);  a = float32(zigzag^-1(s))
//               d = float32(SplitMix64(seed, i) >> 40) * 2^-24 - 0.5
//               w = (a - d) * step_i         (binary32, each operation rounded)
//               FLOAT: w   FLOAT16: binary16(w), round to nearest even
//   step_i: one step for the run, or the run's own array of little-endian binary32 steps
//
//   scalar  dither.h per element (the reference; also the tails of the vector kernels)
//   avx2    4 x u64 SplitMix64 lanes, the 64-bit multiply built from 32-bit ones, 8 elements
//   avx512  vpmullq, 16 elements per iteration
//
// Why the vector paths are exact: the 64-bit arithmetic is integer (wrap-around, like the
// scalar code); x >> 40 < 2^24 converts to binary32 exactly and the scaling by 2^-24 and
// the -0.5 are exact; int32 -> binary32 rounds to nearest even in both (cvtdq2ps, MXCSR
// default); the subtraction and the multiplication are single IEEE operations (no FMA: the
// kernels are not compiled with the fma target); vcvtps2ph with round-to-nearest-even is
// IEEE convertFormat, which FloatToHalfBits implements (the formula never yields a NaN, the
// one case where the two could differ).
#ifndef UDC_CORE_QUANTIZERS_SCALAR_KERNELS_H_
#define UDC_CORE_QUANTIZERS_SCALAR_KERNELS_H_

#include <cstdint>
#include <cstring>

#include "core/dither.h"
#include "core/half.h"
#include "core/simd.h"
#include "core/symbols.h"

#if defined(__x86_64__) && !defined(__CUDACC__)
#include <immintrin.h>
#define UDC_SCALAR_KERNELS_X86 1
#endif

namespace udc {
namespace scalar_kernels {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;
constexpr uint64_t kMul1 = 0xBF58476D1CE4E5B9ull;
constexpr uint64_t kMul2 = 0x94D049BB133111EBull;

inline float StepAt(const uint8_t* steps, uint64_t k) {
  float f;
  std::memcpy(&f, steps + 4 * k, 4);
  return f;
}

// Elements [begin, end); step_i = steps[i - begin] when kPer, else `step`.
template <int W, bool kHalf, bool kPer>
inline void RunScalar(const uint8_t* symbols, uint64_t numel, uint64_t seed, float step, const uint8_t* steps,
                      uint64_t begin, uint64_t end, uint8_t* out) {
  for (uint64_t i = begin; i < end; ++i) {
    const uint32_t s = PlanarSymbol<W>(symbols, numel, i);
    const float a = static_cast<float>(ZigzagDecode(s));
    const float t = a - Dither(seed, i);
    const float w = t * (kPer ? StepAt(steps, i - begin) : step);
    if (kHalf) {
      const uint16_t h = FloatToHalfBits(w);
      std::memcpy(out + 2 * i, &h, 2);
    } else {
      std::memcpy(out + 4 * i, &w, 4);
    }
  }
}

#if defined(UDC_SCALAR_KERNELS_X86)

// The vector helpers are inline functions of this header only: their vector arguments
// never cross an ABI boundary compiled for another target.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined_* in the intrinsics

#define UDC_TARGET_AVX2 __attribute__((target("avx2,f16c,bmi2,popcnt")))
#define UDC_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,f16c,bmi2,popcnt")))

// ---- AVX2 -------------------------------------------------------------------------------

// a * b mod 2^64 per u64 lane, b a constant split into 32-bit halves.
UDC_TARGET_AVX2 inline __m256i Mul64Avx2(__m256i a, __m256i b_lo, __m256i b_hi) {
  const __m256i lo = _mm256_mul_epu32(a, b_lo);
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), b_lo), _mm256_mul_epu32(a, b_hi));
  return _mm256_add_epi64(lo, _mm256_slli_epi64(cross, 32));
}

// SplitMix64 of 4 counters x (already seed + (i + 1) * golden) -> the high 32 bits of the
// output (its >> 40 is the value's top 24 bits; the last xor-shift leaves them unchanged).
UDC_TARGET_AVX2 inline __m256i MixHighAvx2(__m256i x) {
  const __m256i m1_lo = _mm256_set1_epi64x(static_cast<int64_t>(kMul1 & 0xFFFFFFFFu));
  const __m256i m1_hi = _mm256_set1_epi64x(static_cast<int64_t>(kMul1 >> 32));
  const __m256i m2_lo = _mm256_set1_epi64x(static_cast<int64_t>(kMul2 & 0xFFFFFFFFu));
  const __m256i m2_hi = _mm256_set1_epi64x(static_cast<int64_t>(kMul2 >> 32));
  x = Mul64Avx2(_mm256_xor_si256(x, _mm256_srli_epi64(x, 30)), m1_lo, m1_hi);
  x = Mul64Avx2(_mm256_xor_si256(x, _mm256_srli_epi64(x, 27)), m2_lo, m2_hi);
  return x;
}

UDC_TARGET_AVX2 inline __m256i Plane8(const uint8_t* p) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}

// Planar symbols i .. i + 7 as u32.
template <int W>
UDC_TARGET_AVX2 inline __m256i Symbols8(const uint8_t* symbols, uint64_t numel, uint64_t i) {
  __m256i s = Plane8(symbols + i);
  if (W >= 2) s = _mm256_or_si256(s, _mm256_slli_epi32(Plane8(symbols + numel + i), 8));
  if (W >= 4) {
    s = _mm256_or_si256(s, _mm256_slli_epi32(Plane8(symbols + 2 * numel + i), 16));
    s = _mm256_or_si256(s, _mm256_slli_epi32(Plane8(symbols + 3 * numel + i), 24));
  }
  return s;
}

// (float32(zigzag^-1(s)) - d) * step for 8 elements, d from the 8 dither high words.
UDC_TARGET_AVX2 inline __m256 Formula8(__m256i s, __m256i k24, __m256 step) {
  const __m256i q = _mm256_xor_si256(_mm256_srli_epi32(s, 1), _mm256_sub_epi32(_mm256_setzero_si256(),
                                                                              _mm256_and_si256(s, _mm256_set1_epi32(1))));
  const __m256 d = _mm256_sub_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(k24), _mm256_set1_ps(0x1p-24f)), _mm256_set1_ps(0.5f));
  return _mm256_mul_ps(_mm256_sub_ps(_mm256_cvtepi32_ps(q), d), step);
}

template <int W, bool kHalf, bool kPer>
UDC_TARGET_AVX2 void RunAvx2(const uint8_t* symbols, uint64_t numel, uint64_t seed, float step, const uint8_t* steps,
                             uint64_t begin, uint64_t end, uint8_t* out) {
  uint64_t i = begin;
  if (end - begin >= 8) {
    // x of elements i, i+2, i+4, i+6 (xa) and i+1, i+3, i+5, i+7 (xb): then the high words
    // of xa and xb interleave into element order with one blend.
    const uint64_t x0 = seed + (i + 1) * kGolden;
    __m256i xa = _mm256_setr_epi64x(static_cast<int64_t>(x0), static_cast<int64_t>(x0 + 2 * kGolden),
                                    static_cast<int64_t>(x0 + 4 * kGolden), static_cast<int64_t>(x0 + 6 * kGolden));
    __m256i xb = _mm256_add_epi64(xa, _mm256_set1_epi64x(static_cast<int64_t>(kGolden)));
    const __m256i inc = _mm256_set1_epi64x(static_cast<int64_t>(8 * kGolden));
    const __m256 step_v = _mm256_set1_ps(step);
    for (; i + 8 <= end; i += 8) {
      const __m256i ha = MixHighAvx2(xa);  // element 2m: high word in 32-bit slot 2m + 1
      const __m256i hb = MixHighAvx2(xb);  // element 2m + 1: high word in slot 2m + 1
      // slot 2m <- ha's slot 2m + 1, slot 2m + 1 <- hb's slot 2m + 1
      const __m256i h = _mm256_blend_epi32(_mm256_srli_epi64(ha, 32), hb, 0xAA);
      const __m256i k24 = _mm256_srli_epi32(h, 8);
      const __m256 sv = kPer ? _mm256_loadu_ps(reinterpret_cast<const float*>(steps + 4 * (i - begin))) : step_v;
      const __m256 w = Formula8(Symbols8<W>(symbols, numel, i), k24, sv);
      if (kHalf) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), _mm256_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT));
      } else {
        _mm256_storeu_ps(reinterpret_cast<float*>(out + 4 * i), w);
      }
      xa = _mm256_add_epi64(xa, inc);
      xb = _mm256_add_epi64(xb, inc);
    }
  }
  RunScalar<W, kHalf, kPer>(symbols, numel, seed, step, kPer ? steps + 4 * (i - begin) : nullptr, i, end, out);
}

// ---- AVX-512 ----------------------------------------------------------------------------

UDC_TARGET_AVX512 inline __m512i Plane16(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <int W>
UDC_TARGET_AVX512 inline __m512i Symbols16(const uint8_t* symbols, uint64_t numel, uint64_t i) {
  __m512i s = Plane16(symbols + i);
  if (W >= 2) s = _mm512_or_si512(s, _mm512_slli_epi32(Plane16(symbols + numel + i), 8));
  if (W >= 4) {
    s = _mm512_or_si512(s, _mm512_slli_epi32(Plane16(symbols + 2 * numel + i), 16));
    s = _mm512_or_si512(s, _mm512_slli_epi32(Plane16(symbols + 3 * numel + i), 24));
  }
  return s;
}

UDC_TARGET_AVX512 inline __m512i MixHighAvx512(__m512i x) {
  x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 30)), _mm512_set1_epi64(static_cast<int64_t>(kMul1)));
  x = _mm512_mullo_epi64(_mm512_xor_si512(x, _mm512_srli_epi64(x, 27)), _mm512_set1_epi64(static_cast<int64_t>(kMul2)));
  return x;
}

template <int W, bool kHalf, bool kPer>
UDC_TARGET_AVX512 void RunAvx512(const uint8_t* symbols, uint64_t numel, uint64_t seed, float step,
                                 const uint8_t* steps, uint64_t begin, uint64_t end, uint8_t* out) {
  uint64_t i = begin;
  if (end - begin >= 16) {
    // xa: elements i + 2m, xb: i + 2m + 1 (m = 0..7), as in the AVX2 kernel.
    const __m512i m = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    const uint64_t x0 = seed + (i + 1) * kGolden;
    __m512i xa = _mm512_add_epi64(_mm512_set1_epi64(static_cast<int64_t>(x0)),
                                  _mm512_mullo_epi64(m, _mm512_set1_epi64(static_cast<int64_t>(kGolden))));
    __m512i xb = _mm512_add_epi64(xa, _mm512_set1_epi64(static_cast<int64_t>(kGolden)));
    const __m512i inc = _mm512_set1_epi64(static_cast<int64_t>(16 * kGolden));
    const __m512 step_v = _mm512_set1_ps(step);
    const __m512i one = _mm512_set1_epi32(1);
    for (; i + 16 <= end; i += 16) {
      const __m512i ha = MixHighAvx512(xa);
      const __m512i hb = MixHighAvx512(xb);
      const __m512i h = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(ha, 32), hb);
      const __m512i k24 = _mm512_srli_epi32(h, 8);
      const __m512 d = _mm512_sub_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(k24), _mm512_set1_ps(0x1p-24f)), _mm512_set1_ps(0.5f));
      const __m512i s = Symbols16<W>(symbols, numel, i);
      const __m512i q = _mm512_xor_si512(_mm512_srli_epi32(s, 1), _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_and_si512(s, one)));
      const __m512 sv = kPer ? _mm512_loadu_ps(steps + 4 * (i - begin)) : step_v;
      const __m512 w = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(q), d), sv);
      if (kHalf) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * i), _mm512_cvtps_ph(w, _MM_FROUND_TO_NEAREST_INT));
      } else {
        _mm512_storeu_ps(out + 4 * i, w);
      }
      xa = _mm512_add_epi64(xa, inc);
      xb = _mm512_add_epi64(xb, inc);
    }
  }
  RunScalar<W, kHalf, kPer>(symbols, numel, seed, step, kPer ? steps + 4 * (i - begin) : nullptr, i, end, out);
}

#pragma GCC diagnostic pop
#endif  // UDC_SCALAR_KERNELS_X86

// Elements [begin, end) at the active SIMD level; steps (kPer) has end - begin entries.
template <int W, bool kHalf, bool kPer>
inline void Run(const uint8_t* symbols, uint64_t numel, uint64_t seed, float step, const uint8_t* steps,
                uint64_t begin, uint64_t end, uint8_t* out) {
#if defined(UDC_SCALAR_KERNELS_X86)
  switch (simd::Active()) {
    case simd::Level::kAvx512: return RunAvx512<W, kHalf, kPer>(symbols, numel, seed, step, steps, begin, end, out);
    case simd::Level::kAvx2: return RunAvx2<W, kHalf, kPer>(symbols, numel, seed, step, steps, begin, end, out);
    default: break;
  }
#endif
  RunScalar<W, kHalf, kPer>(symbols, numel, seed, step, steps, begin, end, out);
}

}  // namespace scalar_kernels
}  // namespace udc

#endif  // UDC_CORE_QUANTIZERS_SCALAR_KERNELS_H_
