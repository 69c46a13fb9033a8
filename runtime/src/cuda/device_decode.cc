#include "cuda/device_decode.h"

#include <chrono>
#include <string>

#include "cuda/launch.h"

namespace udc {
namespace cuda {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) { return std::chrono::duration<double>(Clock::now() - since).count(); }

// Device memory freed on scope exit (cudaFree of nullptr is a no-op).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (ptr_) cudaFree(ptr_);
  }
  Status Alloc(size_t bytes, const char* what) {
    if (bytes == 0) return Status::Ok();
    return FromCuda(cudaMalloc(&ptr_, bytes), what);
  }
  uint8_t* get() const { return static_cast<uint8_t*>(ptr_); }

 private:
  void* ptr_ = nullptr;
};

}  // namespace

Status FromCuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return Status::Ok();
  cudaGetLastError();  // clear a non-sticky error so later calls are not blamed for it
  const bool unavailable = e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver ||
                           e == cudaErrorInvalidDevice || e == cudaErrorInitializationError;
  return Status(unavailable ? Code::kUnavailable : Code::kDeviceError,
                std::string(what) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
}

Status DeviceCount(int* count) {
  *count = 0;
  const cudaError_t e = cudaGetDeviceCount(count);
  if (e != cudaSuccess) *count = 0;
  return FromCuda(e, "cudaGetDeviceCount");
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

Status DeviceGuard::Set(int device) {
  int current = 0;
  UDC_RETURN_IF_ERROR(FromCuda(cudaGetDevice(&current), "cudaGetDevice"));
  if (current == device) return Status::Ok();
  UDC_RETURN_IF_ERROR(FromCuda(cudaSetDevice(device), ("cudaSetDevice(" + std::to_string(device) + ")").c_str()));
  previous_ = current;
  return Status::Ok();
}

Status DecodeToDevice(const BlobView& view, void* out, size_t out_len, cudaStream_t stream, const DecodeOptions& opt,
                      Timing* timing) {
  UDC_RETURN_IF_ERROR(CheckOutputCap(view, opt));
  UDC_RETURN_IF_ERROR(CheckOutput(view, out, out_len));
  Clock::time_point t = Clock::now();
  Prepared prepared;
  UDC_RETURN_IF_ERROR(Prepare(view, &prepared));
  if (timing) timing->entropy_s = Seconds(t);
  if (prepared.plan.units == 0) return Status::Ok();

  const Header& h = view.header;
  t = Clock::now();
  DeviceBuffer symbols, params;
  UDC_RETURN_IF_ERROR(symbols.Alloc(prepared.symbol_bytes, "cudaMalloc(symbols)"));
  UDC_RETURN_IF_ERROR(params.Alloc(h.params_len, "cudaMalloc(params)"));
  if (prepared.symbol_bytes) {
    UDC_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(symbols.get(), prepared.symbols, prepared.symbol_bytes,
                                                 cudaMemcpyHostToDevice, stream),
                                 "cudaMemcpyAsync(symbols to device)"));
  }
  if (h.params_len) {
    UDC_RETURN_IF_ERROR(FromCuda(cudaMemcpyAsync(params.get(), h.params, h.params_len, cudaMemcpyHostToDevice, stream),
                                 "cudaMemcpyAsync(params to device)"));
  }
  if (timing) {
    UDC_RETURN_IF_ERROR(FromCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize(upload)"));
    timing->upload_s = Seconds(t);
    t = Clock::now();
  }
  UDC_RETURN_IF_ERROR(FromCuda(
      udc_cuda_launch_reconstruct(&prepared.plan, symbols.get(), params.get(), static_cast<uint8_t*>(out), stream),
      "launching the reconstruction kernel"));
  // The uploads read host memory owned here, and the temporaries are freed on return.
  UDC_RETURN_IF_ERROR(FromCuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize(reconstruction)"));
  if (timing) timing->kernel_s = Seconds(t);
  return Status::Ok();
}

}  // namespace cuda
}  // namespace udc
