// capi_guard.h - how every C entry point (capi.cc, capi_cuda.cc) turns a udc::Status or a
// C++ exception into a udc_status and a one-line message.
#ifndef UDC_CAPI_GUARD_H_
#define UDC_CAPI_GUARD_H_

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "core/options.h"
#include "core/status.h"
#include "onnx_udc.h"

namespace udc {
namespace capi {

inline int Report(const udc::Status& s, char* err, size_t err_len) {
  if (err != nullptr && err_len > 0) {
    const std::string& m = s.message();
    const size_t n = m.size() < err_len - 1 ? m.size() : err_len - 1;
    std::memcpy(err, m.data(), n);
    err[n] = '\0';
  }
  return static_cast<int>(s.code());
}

inline int ReportRaw(int code, const char* message, char* err, size_t err_len) {
  if (err != nullptr && err_len > 0) std::snprintf(err, err_len, "%s", message);
  return code;
}

template <typename Fn>
int Guard(char* err, size_t err_len, Fn&& fn) {
  try {
    return Report(fn(), err, err_len);
  } catch (const std::bad_alloc&) {
    return ReportRaw(UDC_OUT_OF_MEMORY, "out of memory while decoding the blob", err, err_len);
  } catch (const std::exception& e) {
    return ReportRaw(UDC_INTERNAL, e.what(), err, err_len);
  } catch (...) {
    return ReportRaw(UDC_INTERNAL, "unknown C++ exception", err, err_len);
  }
}

// Bounds of udc_decode_options::struct_size (onnx_udc.h).
constexpr size_t kMinOptionsSize = sizeof(uint32_t);
constexpr size_t kMaxOptionsSize = 4096;

// udc_decode_options (NULL: the defaults) -> DecodeOptions, by the rules of onnx_udc.h:
// the fields inside struct_size are read, the others keep their defaults; bytes past this
// library's struct must be 0.
inline udc::Status ReadOptions(const udc_decode_options* in, udc::DecodeOptions* out) {
  *out = udc::DecodeOptions();
  if (in == nullptr) return udc::Status::Ok();
  uint32_t size = 0;
  std::memcpy(&size, in, sizeof size);
  if (size < kMinOptionsSize || size > kMaxOptionsSize) {
    return udc::Status(udc::Code::kInvalidArgument,
                       "options struct_size is " + std::to_string(size) +
                           ", must be in [4, 4096] (initialise the options with udc_decode_options_init)");
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(in);
  for (size_t i = sizeof(udc_decode_options); i < size; ++i) {
    if (bytes[i] != 0) {
      return udc::Status(udc::Code::kInvalidArgument, "options byte " + std::to_string(i) +
                                                          " is set, but this library knows only the first " +
                                                          std::to_string(sizeof(udc_decode_options)) + " bytes");
    }
  }
  if (size >= offsetof(udc_decode_options, threads) + sizeof in->threads) {
    uint32_t threads = 0;
    std::memcpy(&threads, bytes + offsetof(udc_decode_options, threads), sizeof threads);
    out->max_threads = threads > static_cast<uint32_t>(udc::kMaxDecodeThreads) ? udc::kMaxDecodeThreads
                                                                               : static_cast<int>(threads);
  }
  if (size >= offsetof(udc_decode_options, max_output_bytes) + sizeof in->max_output_bytes) {
    std::memcpy(&out->max_output_bytes, bytes + offsetof(udc_decode_options, max_output_bytes),
                sizeof out->max_output_bytes);
  }
  return udc::Status::Ok();
}

}  // namespace capi
}  // namespace udc

#endif  // UDC_CAPI_GUARD_H_
