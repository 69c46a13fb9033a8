// cpu_ops.cc - CPU kernels of the decode ops.
//
//   kernel creation: blob (constant uint8[L] initializer) --udc::Decode--> cached tensor
//   Compute:         output = new tensor(cached shape); memcpy(cached bytes)
//   non-constant blob (fed as a graph input): decoded in every Compute, straight into
//   the output.
//
// Errors never abort: kernel creation returns an OrtStatus (session creation fails with
// "onnx_udc: node 'X' (ai.onnx_udc.Decode): CHECKSUM_MISMATCH: ..."), and so does Compute.
#include "ort/cpu_ops.h"

#include <cstring>

#include "ort/decode_op.h"

namespace udc {
namespace ort {
namespace {

class CpuDecodeKernel : public KernelBase {
 public:
  static constexpr const char* kProvider = "CPUExecutionProvider";
  static constexpr OrtMemType kBlobMemory = OrtMemTypeDefault;

  using KernelBase::KernelBase;

  // Reads the blob at kernel creation when it is a constant initializer.
  OrtStatusPtr Init(const OrtKernelInfo* info) {
    bool constant = false;
    BlobView view;
    if (OrtStatusPtr s = ConstantBlob(info, &constant, &view)) return s;
    if (!constant) return nullptr;  // decode in every Compute
    if (OrtStatusPtr s = Check(CheckOutputCap(view, options_))) return s;  // before allocating
    nbytes_ = static_cast<size_t>(view.nbytes());
    cache_.reset(new uint8_t[nbytes_ ? nbytes_ : 1]);
    if (OrtStatusPtr s = Check(DecodeInto(view, cache_.get(), nbytes_, options_))) return s;
    shape_ = Shape(view.header);
    cached_ = true;
    return nullptr;
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    return Guarded(Prefix(), [&]() -> OrtStatusPtr {
      Ort::KernelContext ctx(context);
      if (cached_) {
        Ort::UnownedValue out = ctx.GetOutput(0, shape_);
        if (nbytes_) std::memcpy(out.GetTensorMutableRawData(), cache_.get(), nbytes_);
        return nullptr;
      }
      BlobView view;
      if (OrtStatusPtr s = RunBlob(ctx, &view)) return s;
      if (OrtStatusPtr s = Check(CheckOutputCap(view, options_))) return s;  // before the output
      Ort::UnownedValue out = ctx.GetOutput(0, Shape(view.header));
      const size_t nbytes = static_cast<size_t>(view.nbytes());
      return Check(DecodeInto(view, nbytes ? out.GetTensorMutableRawData() : nullptr, nbytes, options_));
    });
  }

 private:
  bool cached_ = false;
  std::vector<int64_t> shape_;
  ByteBuffer cache_;
  size_t nbytes_ = 0;
};

}  // namespace

void RegisterCpuOps(Ort::CustomOpDomain& domain, const DecodeOptions& options) {
  RegisterOps<CpuDecodeKernel>(domain, options);
}

}  // namespace ort
}  // namespace udc
