// simd.h - which vector code paths the CPU decoder may use: chosen at run time, because the
// release build targets baseline x86-64 (manylinux wheel) and the vector kernels are
// compiled per function with __attribute__((target(...))).
//
//   Level::kScalar   portable C++, always present, the reference the others are tested against
//   Level::kAvx2     AVX2 + F16C + BMI2 + POPCNT
//   Level::kAvx512   the above + AVX-512 F/DQ/VL/BW
//
// Active() = min(what the CPU has, the cap). The cap starts at the environment variable
// UDC_SIMD ("scalar", "avx2", "avx512"; unset or anything else: no cap) and tests change it
// with SetCap. Every level produces the same bytes (core_tests compares them).
#ifndef UDC_CORE_SIMD_H_
#define UDC_CORE_SIMD_H_

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace udc {
namespace simd {

enum class Level : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

inline Level Detected() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(__CUDACC__)
  static const Level level = [] {
    __builtin_cpu_init();
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("f16c") &&
                      __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
    if (!avx2) return Level::kScalar;
    const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
                        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
    return avx512 ? Level::kAvx512 : Level::kAvx2;
  }();
  return level;
#else
  return Level::kScalar;
#endif
}

inline std::atomic<int>& CapStorage() {
  static std::atomic<int> cap{[] {
    const char* v = std::getenv("UDC_SIMD");
    if (v == nullptr) return static_cast<int>(Level::kAvx512);
    if (std::strcmp(v, "scalar") == 0) return static_cast<int>(Level::kScalar);
    if (std::strcmp(v, "avx2") == 0) return static_cast<int>(Level::kAvx2);
    return static_cast<int>(Level::kAvx512);
  }()};
  return cap;
}

// The highest level the decoder may use from now on (tests; thread-safe, not per call).
inline void SetCap(Level level) { CapStorage().store(static_cast<int>(level), std::memory_order_relaxed); }
inline Level Cap() { return static_cast<Level>(CapStorage().load(std::memory_order_relaxed)); }

inline Level Active() {
  const Level d = Detected(), c = Cap();
  return static_cast<int>(c) < static_cast<int>(d) ? c : d;
}

inline const char* Name(Level level) {
  switch (level) {
    case Level::kAvx512: return "avx512";
    case Level::kAvx2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace simd
}  // namespace udc

#endif  // UDC_CORE_SIMD_H_
