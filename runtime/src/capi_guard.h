// capi_guard.h - how every C entry point (capi.cc, capi_cuda.cc) turns a udc::Status or a
// C++ exception into a udc_status and a one-line message.
#ifndef UDC_CAPI_GUARD_H_
#define UDC_CAPI_GUARD_H_

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

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


}  // namespace capi
}  // namespace udc

#endif  // UDC_CAPI_GUARD_H_
