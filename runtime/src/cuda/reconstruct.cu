// reconstruct.cu - the CUDA reconstruction kernel: every thread runs work items of a
// ReconPlan with the very function the host emulation runs (core/reconstruct.h), so the
// GPU writes the CPU decoder's bytes. Built with --fmad=false: every binary32 operation of
// FORMAT.md section 4 rounds on its own, as on the CPU (-ffp-contract=off).
//
// Only this kernel and its launcher are compiled by nvcc; everything onnxruntime lives in
// .cc files (runtime/src/ort/cuda_ops.cc), as BUILD-NOTES asks.
#include <cuda_runtime.h>

#include "core/reconstruct.h"
#include "cuda/launch.h"

namespace {

__global__ void ReconstructKernel(const udc::ReconPlan plan, const uint8_t* __restrict__ symbols,
                                  const uint8_t* __restrict__ params, uint8_t* __restrict__ out) {
  const uint64_t stride = uint64_t{gridDim.x} * blockDim.x;
  for (uint64_t u = uint64_t{blockIdx.x} * blockDim.x + threadIdx.x; u < plan.units; u += stride) {
    udc::ReconstructUnit(plan, symbols, params, out, u);
  }
}

constexpr unsigned kThreads = 256;
constexpr uint64_t kMaxBlocks = 65535;  // grid-stride loop beyond that

}  // namespace

extern "C" cudaError_t udc_cuda_launch_reconstruct(const udc::ReconPlan* plan, const uint8_t* symbols,
                                                   const uint8_t* params, uint8_t* out, cudaStream_t stream) {
  if (plan->units == 0) return cudaSuccess;
  uint64_t blocks = (plan->units + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  ReconstructKernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(*plan, symbols, params, out);
  return cudaGetLastError();
}
