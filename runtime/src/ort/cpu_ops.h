// cpu_ops.h - the CPU decode ops of domain ai.onnx_udc (FORMAT.md section 1):
// Decode (FLOAT), DecodeUInt8, DecodeInt8, DecodeInt32, DecodeFloat16.
#ifndef UDC_ORT_CPU_OPS_H_
#define UDC_ORT_CPU_OPS_H_

#include "core/options.h"
#include "ort/ort_include.h"

namespace udc {
namespace ort {

// Adds the five CPU decode ops, decoding with `options`, to `domain`. The op objects are
// never freed: they outlive the domain and every session.
void RegisterCpuOps(Ort::CustomOpDomain& domain, const DecodeOptions& options);

}  // namespace ort
}  // namespace udc

#endif  // UDC_ORT_CPU_OPS_H_
