// launch.h - the one entry point of the nvcc-compiled code (reconstruct.cu).
#ifndef UDC_CUDA_LAUNCH_H_
#define UDC_CUDA_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/reconstruct.h"

// Enqueues the reconstruction of every unit of *plan on `stream`: symbols (the coder's
// planar bytes), params (the blob's params) and out (the tensor's bytes) are device memory.
// Returns the launch error, if any (execution errors surface at the next synchronisation).
extern "C" cudaError_t udc_cuda_launch_reconstruct(const udc::ReconPlan* plan, const uint8_t* symbols,
                                                   const uint8_t* params, uint8_t* out, cudaStream_t stream);

#endif  // UDC_CUDA_LAUNCH_H_
