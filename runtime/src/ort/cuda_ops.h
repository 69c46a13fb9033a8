// cuda_ops.h - the decode ops of domain ai.onnx_udc for onnxruntime's CUDA execution
// provider (built only where a CUDA toolkit was found: UDC_WITH_CUDA).
#ifndef UDC_ORT_CUDA_OPS_H_
#define UDC_ORT_CUDA_OPS_H_

#include "core/options.h"
#include "ort/ort_include.h"

namespace udc {
namespace ort {

// Adds the five CUDA decode ops (same names as the CPU ones), decoding with `options`
// (max_output_bytes; threads is not used), to `domain`.
void RegisterCudaOps(Ort::CustomOpDomain& domain, const DecodeOptions& options);

}  // namespace ort
}  // namespace udc

#endif  // UDC_ORT_CUDA_OPS_H_
