// options.h - what a caller may choose about one decode (the C API's udc_decode_options,
// the custom ops' session options). Neither changes the decoded bytes.
#ifndef UDC_CORE_OPTIONS_H_
#define UDC_CORE_OPTIONS_H_

#include <cstdint>

namespace udc {

// Threads one decode may use at most (larger requests are clamped to it).
constexpr int kMaxDecodeThreads = 256;

struct DecodeOptions {
  // <= 0: hardware concurrency, capped at 8; 1: the calling thread only; N: at most N
  // threads (ParallelFor: ranges below 2^20 elements are never split). Bit-identical
  // output for any value.
  int max_threads = 0;
  // 0: no cap. Else a blob whose decoded size (numel * element size) exceeds it fails
  // with kLimitExceeded before anything is allocated for it (CheckOutputCap).
  uint64_t max_output_bytes = 0;
};

}  // namespace udc

#endif  // UDC_CORE_OPTIONS_H_
