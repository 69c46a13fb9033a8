// hd.h - what lets one function body serve the CPU decoder and the CUDA kernels.
//
// UDC_HD marks a function __host__ __device__ when nvcc compiles it and is empty for the
// host compiler. Bit casts and little-endian loads here work on both sides (memcpy is not a
// device function of every toolkit), so the dequantization formulas of FORMAT.md section 4
// are written once and run bit-identically on CPU and GPU (with FMA contraction off on both).
#ifndef UDC_CORE_HD_H_
#define UDC_CORE_HD_H_

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define UDC_HD __host__ __device__
#else
#define UDC_HD
#endif

namespace udc {

UDC_HD inline uint32_t FloatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

UDC_HD inline float BitsFloat(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// Little-endian loads from unaligned bytes.
UDC_HD inline uint16_t LoadLE16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
UDC_HD inline uint32_t LoadLE32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
UDC_HD inline float LoadLEF32(const uint8_t* p) { return BitsFloat(LoadLE32(p)); }

// Stores of one element at byte offset `at` (aligned to the element size on the GPU, where
// the buffer comes from cudaMalloc; unaligned is fine on the host).
UDC_HD inline void StoreU16(uint8_t* out, uint64_t at, uint16_t v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint16_t*>(out + at) = v;
#else
  std::memcpy(out + at, &v, 2);
#endif
}
UDC_HD inline void StoreU32(uint8_t* out, uint64_t at, uint32_t v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<uint32_t*>(out + at) = v;
#else
  std::memcpy(out + at, &v, 4);
#endif
}

}  // namespace udc

#endif  // UDC_CORE_HD_H_
