// capi_cuda.cc - the CUDA entry points of onnx_udc.h. Built into libonnx_udc.so always:
// without a CUDA toolkit at build time they report UDC_UNAVAILABLE.
#include <chrono>
#include <string>

#include "capi_guard.h"
#include "core/decode.h"
#include "onnx_udc.h"

#if defined(UDC_WITH_CUDA)
#include "cuda/device_decode.h"
#endif

using udc::capi::Guard;
using udc::capi::ReadOptions;

extern "C" {

#if defined(UDC_WITH_CUDA)

int udc_cuda_device_count(int* count, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (count == nullptr) return udc::Status(udc::Code::kInvalidArgument, "count is NULL");
    return udc::cuda::DeviceCount(count);
  });
}

int udc_decode_cuda_ex(const uint8_t* blob, size_t blob_len, int device, void* out, size_t out_len,
                       const udc_decode_options* options, udc_cuda_timing* timing, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (blob == nullptr) return udc::Status(udc::Code::kInvalidArgument, "blob is NULL");
    if (out == nullptr && out_len != 0) return udc::Status(udc::Code::kInvalidArgument, "out is NULL");
    udc::DecodeOptions opt;
    UDC_RETURN_IF_ERROR(ReadOptions(options, &opt));
    const auto start = std::chrono::steady_clock::now();
    udc::BlobView view;
    UDC_RETURN_IF_ERROR(udc::Inspect(blob, blob_len, &view));
    UDC_RETURN_IF_ERROR(udc::CheckOutputCap(view, opt));        // before any device allocation
    UDC_RETURN_IF_ERROR(udc::CheckOutput(view, out, out_len));  // likewise
    const double inspect_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    int count = 0;
    UDC_RETURN_IF_ERROR(udc::cuda::DeviceCount(&count));
    if (device < 0 || device >= count) {
      return udc::Status(udc::Code::kUnavailable, "CUDA device " + std::to_string(device) + " does not exist (" +
                                                      std::to_string(count) + " visible)");
    }
    udc::cuda::DeviceGuard guard;
    UDC_RETURN_IF_ERROR(guard.Set(device));
    cudaStream_t stream = nullptr;
    UDC_RETURN_IF_ERROR(udc::cuda::FromCuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate"));
    void* d_out = nullptr;
    udc::Status s = out_len ? udc::cuda::FromCuda(cudaMalloc(&d_out, out_len), "cudaMalloc(output)") : udc::Status::Ok();
    udc::cuda::Timing t;
    if (s.ok()) s = udc::cuda::DecodeToDevice(view, d_out, out_len, stream, opt, &t);
    if (s.ok() && out_len) {
      const auto copy = std::chrono::steady_clock::now();
      s = udc::cuda::FromCuda(cudaMemcpy(out, d_out, out_len, cudaMemcpyDeviceToHost), "cudaMemcpy(output to host)");
      t.download_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - copy).count();
    }
    if (d_out) {
      const udc::Status freed = udc::cuda::FromCuda(cudaFree(d_out), "cudaFree(output)");
      if (s.ok()) s = freed;
    }
    const udc::Status destroyed = udc::cuda::FromCuda(cudaStreamDestroy(stream), "cudaStreamDestroy");
    if (s.ok()) s = destroyed;
    if (s.ok() && timing) *timing = udc_cuda_timing{inspect_s + t.entropy_s, t.upload_s, t.kernel_s, t.download_s};
    return s;
  });
}

int udc_decode_cuda(const uint8_t* blob, size_t blob_len, int device, void* out, size_t out_len,
                    udc_cuda_timing* timing, char* err, size_t err_len) {
  return udc_decode_cuda_ex(blob, blob_len, device, out, out_len, nullptr, timing, err, err_len);
}

#else  // built without CUDA

int udc_cuda_device_count(int* count, char* err, size_t err_len) {
  if (count) *count = 0;
  return Guard(err, err_len, [&]() -> udc::Status {
    return udc::Status(udc::Code::kUnavailable, "this libonnx_udc was built without CUDA (no nvcc at build time)");
  });
}

int udc_decode_cuda_ex(const uint8_t*, size_t, int, void*, size_t, const udc_decode_options*, udc_cuda_timing*,
                       char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    return udc::Status(udc::Code::kUnavailable, "this libonnx_udc was built without CUDA (no nvcc at build time)");
  });
}

int udc_decode_cuda(const uint8_t* blob, size_t blob_len, int device, void* out, size_t out_len,
                    udc_cuda_timing* timing, char* err, size_t err_len) {
  return udc_decode_cuda_ex(blob, blob_len, device, out, out_len, nullptr, timing, err, err_len);
}

#endif

}  // extern "C"
