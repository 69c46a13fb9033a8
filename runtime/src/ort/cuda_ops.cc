// cuda_ops.cc - CUDA kernels of the decode ops (onnxruntime's CUDAExecutionProvider).
//
//   kernel creation (constant blob, kept in host memory: the input is declared CPU memory):
//     Inspect + entropy decoding on the CPU (sequential by nature)
//     --upload symbols, params--> reconstruction kernel on the GPU (cuda/reconstruct.cu)
//     --> cached tensor in device memory from onnxruntime's allocator for this provider
//     (KernelCache, the policy of decode_op.h), on a private stream, synchronised before
//     the kernel exists
//   Compute: output = new device tensor; cudaMemcpyAsync(device to device) on onnxruntime's
//     compute stream (KernelContext_GetGPUComputeStream), never the default stream
//   non-constant blob: the same decode in every Compute, into the output, on the compute
//     stream (synchronised: the uploads read host memory owned by the call)
//
// Every CUDA error becomes an OrtStatus naming the node and the CUDA call.
#include "ort/cuda_ops.h"

#include <cuda_runtime_api.h>

#include <string>

#include "cuda/device_decode.h"
#include "ort/decode_op.h"

namespace udc {
namespace ort {
namespace {

class CudaDecodeKernel : public KernelBase {
 public:
  static constexpr const char* kProvider = "CUDAExecutionProvider";
  static constexpr OrtMemType kBlobMemory = OrtMemTypeCPUInput;

  using KernelBase::KernelBase;

  OrtStatusPtr Init(const OrtKernelInfo* info) {
    // The provider's device allocator (KernelCache): the cache lives where onnxruntime puts
    // this node's output, and counts against the provider's memory limit.
    if (OrtStatusPtr s = cache_.Init(info)) return s;
    const OrtMemoryInfo* mem = nullptr;
    if (OrtStatusPtr s = cache_.MemoryInfo(&mem)) return s;
    if (OrtStatusPtr s = Ort::GetApi().MemoryInfoGetId(mem, &device_)) return s;

    bool constant = false;
    BlobView view;
    if (OrtStatusPtr s = ConstantBlob(info, &constant, &view)) return s;
    if (!constant) return nullptr;  // decode in every Compute
    if (OrtStatusPtr s = Check(CheckOutputCap(view, options_))) return s;  // before allocating
    const size_t nbytes = static_cast<size_t>(view.nbytes());
    shape_ = Shape(view.header);

    cuda::DeviceGuard guard;
    if (OrtStatusPtr s = Check(guard.Set(device_))) return s;
    if (!cache_.Allocate(nbytes)) {
      return MakeStatus(ORT_FAIL, Prefix() + "OUT_OF_MEMORY: cannot allocate " + std::to_string(nbytes) +
                                      " bytes on CUDA device " + std::to_string(device_));
    }
    cudaStream_t stream = nullptr;
    if (OrtStatusPtr s = Check(cuda::FromCuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
                                              "cudaStreamCreateWithFlags"))) {
      return s;
    }
    const Status decoded = cuda::DecodeToDevice(view, cache_.data(), cache_.size(), stream, options_);
    const Status destroyed = cuda::FromCuda(cudaStreamDestroy(stream), "cudaStreamDestroy");
    if (OrtStatusPtr s = Check(decoded)) return s;
    if (OrtStatusPtr s = Check(destroyed)) return s;
    cached_ = true;
    return nullptr;
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    return Guarded(Prefix(), [&]() -> OrtStatusPtr {
      Ort::KernelContext ctx(context);
      cudaStream_t stream = static_cast<cudaStream_t>(ctx.GetGPUComputeStream());
      cuda::DeviceGuard guard;
      if (OrtStatusPtr s = Check(guard.Set(device_))) return s;
      if (cached_) {
        Ort::UnownedValue out = ctx.GetOutput(0, shape_);
        if (cache_.size() == 0) return nullptr;
        return Check(cuda::FromCuda(
            cudaMemcpyAsync(out.GetTensorMutableRawData(), cache_.data(), cache_.size(), cudaMemcpyDeviceToDevice,
                            stream),
            "cudaMemcpyAsync(cached tensor to output)"));
      }
      BlobView view;
      if (OrtStatusPtr s = RunBlob(ctx, &view)) return s;
      if (OrtStatusPtr s = Check(CheckOutputCap(view, options_))) return s;  // before the output
      Ort::UnownedValue out = ctx.GetOutput(0, Shape(view.header));
      const size_t nbytes = static_cast<size_t>(view.nbytes());
      return Check(cuda::DecodeToDevice(view, nbytes ? out.GetTensorMutableRawData() : nullptr, nbytes, stream,
                                        options_));
    });
  }

 private:
  int device_ = 0;
  bool cached_ = false;
  std::vector<int64_t> shape_;
  KernelCache cache_;
};

}  // namespace

void RegisterCudaOps(Ort::CustomOpDomain& domain, const DecodeOptions& options) {
  RegisterOps<CudaDecodeKernel>(domain, options);
}

}  // namespace ort
}  // namespace udc
