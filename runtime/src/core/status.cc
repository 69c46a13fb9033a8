#include "core/status.h"

namespace udc {

const char* CodeName(int code) {
  static const char* const kNames[] = {
      "OK",          "TRUNCATED",         "BAD_MAGIC",       "UNSUPPORTED_VERSION", "UNKNOWN_QUANTIZER",
      "UNKNOWN_CODER", "BAD_HEADER",      "LIMIT_EXCEEDED",  "CHECKSUM_MISMATCH",   "CORRUPT_PAYLOAD",
      "BUFFER_SIZE", "INVALID_ARGUMENT",  "OUT_OF_MEMORY",   "INTERNAL",            "UNAVAILABLE",
      "DEVICE_ERROR", "BAD_MODEL",        "IO_ERROR",        "RUNTIME_ERROR",
  };
  if (code < 0 || code >= static_cast<int>(sizeof(kNames) / sizeof(kNames[0]))) return "UNKNOWN_STATUS";
  return kNames[code];
}

}  // namespace udc
