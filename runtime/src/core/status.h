// status.h - error codes and the Status value returned by every fallible core function.
//
// The core reports errors as values, never as exceptions (only std::bad_alloc can escape,
// and the shells turn it into kOutOfMemory). The numbers equal the C API's udc_status.
#ifndef UDC_CORE_STATUS_H_
#define UDC_CORE_STATUS_H_

#include <string>
#include <utility>

namespace udc {

enum class Code : int {
  kOk = 0,
  kTruncated = 1,
  kBadMagic = 2,
  kUnsupportedVersion = 3,
  kUnknownQuantizer = 4,
  kUnknownCoder = 5,
  kBadHeader = 6,
  kLimitExceeded = 7,
  kChecksumMismatch = 8,
  kCorruptPayload = 9,
  kBufferSize = 10,
  kInvalidArgument = 11,
  kOutOfMemory = 12,
  kInternal = 13,
  kUnavailable = 14,   // no CUDA decoder in this build, no driver or no such device
  kDeviceError = 15,   // a CUDA call failed
  kBadModel = 16,      // fast loader: not an ONNX ModelProto, or a malformed decode node
  kIoError = 17,       // fast loader: a model or external-data file cannot be read
  kRuntimeError = 18,  // fast loader: onnxruntime refused (its message follows)
};

// "OK", "TRUNCATED", ... ; "UNKNOWN_STATUS" for a number outside the enum.
const char* CodeName(int code);
inline const char* CodeName(Code code) { return CodeName(static_cast<int>(code)); }

class Status {
 public:
  Status() = default;  // OK
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }
  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Evaluates `expr` (a Status) and returns it from the calling function if it is an error.
#define UDC_RETURN_IF_ERROR(expr)          \
  do {                                     \
    ::udc::Status udc_status_ = (expr);    \
    if (!udc_status_.ok()) return udc_status_; \
  } while (0)

}  // namespace udc

#endif  // UDC_CORE_STATUS_H_
