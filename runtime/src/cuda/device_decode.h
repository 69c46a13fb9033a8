// device_decode.h - decoding a blob into CUDA device memory (host side, no onnxruntime).
//
//   blob --Inspect/Prepare (CPU: checks, checksum, entropy decoding, CheckSymbols)-->
//        symbols, params --cudaMemcpyAsync--> device --reconstruct.cu--> out (device)
//
// Every CUDA error becomes a udc::Status (kDeviceError naming the call; kUnavailable when
// there is no driver or device), so callers never see a CUDA error code.
#ifndef UDC_CUDA_DEVICE_DECODE_H_
#define UDC_CUDA_DEVICE_DECODE_H_

#include <cuda_runtime_api.h>

#include <cstddef>

#include "core/decode.h"
#include "core/status.h"

namespace udc {
namespace cuda {

struct Timing {
  double entropy_s = 0, upload_s = 0, kernel_s = 0, download_s = 0;
};

// cudaError_t -> Status (kOk for cudaSuccess); `what` names the call.
Status FromCuda(cudaError_t e, const char* what);

// The number of CUDA devices; kUnavailable without a usable driver.
Status DeviceCount(int* count);

// Makes `device` current for the scope and restores the previous one.
class DeviceGuard {
 public:
  DeviceGuard() = default;
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  ~DeviceGuard();
  Status Set(int device);

 private:
  int previous_ = -1;
};

// Decodes the inspected blob into out (device memory of the current device, out_len =
// view.nbytes()) on `stream`, and waits for it: the host buffers it uploads from are freed
// on return. opt.max_output_bytes is checked first (CheckOutputCap; callers that allocate
// `out` check it before that); opt.max_threads is not used. `timing` (may be null) gets
// per-stage seconds (each stage then synchronised). May throw std::bad_alloc (host memory).
Status DecodeToDevice(const BlobView& view, void* out, size_t out_len, cudaStream_t stream,
                      const DecodeOptions& opt = {}, Timing* timing = nullptr);

}  // namespace cuda
}  // namespace udc

#endif  // UDC_CUDA_DEVICE_DECODE_H_
