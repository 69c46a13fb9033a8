// options.h - the decode options of the custom ops (runtime/README.md, "Decode options"),
// read when the library is registered with a session's options (RegisterCustomOps):
//
//   option            session config entry         environment variable        default
//   threads           onnx_udc.decode_threads      ONNX_UDC_DECODE_THREADS     0 (hardware, <= 8)
//   max_output_bytes  onnx_udc.max_output_bytes    ONNX_UDC_MAX_OUTPUT_BYTES   0 (no cap)
//
// The session config entry wins over the environment variable. Values are decimal
// integers (threads above 256 are clamped); anything else fails the registration.
#ifndef UDC_ORT_OPTIONS_H_
#define UDC_ORT_OPTIONS_H_

#include <string>

#include "core/options.h"
#include "ort/ort_include.h"

namespace udc {
namespace ort {

constexpr const char* kThreadsKey = "onnx_udc.decode_threads";
constexpr const char* kMaxOutputBytesKey = "onnx_udc.max_output_bytes";
constexpr const char* kThreadsEnv = "ONNX_UDC_DECODE_THREADS";
constexpr const char* kMaxOutputBytesEnv = "ONNX_UDC_MAX_OUTPUT_BYTES";

// The options for sessions created with `session_options`. Returns false and sets *error
// (naming the entry or variable and its value) for a value that is not a decimal integer.
// May throw Ort::Exception (reading the session config).
bool ReadOpOptions(const OrtSessionOptions* session_options, DecodeOptions* out, std::string* error);

}  // namespace ort
}  // namespace udc

#endif  // UDC_ORT_OPTIONS_H_
