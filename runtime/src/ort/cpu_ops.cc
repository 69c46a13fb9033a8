// cpu_ops.cc - CPU kernels of the decode ops.
//
//   kernel creation: blob (constant uint8[L] initializer) --udc::Decode--> cached tensor
//                    (KernelCache: the CPU provider's allocator, see decode_op.h)
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
    if (OrtStatusPtr s = cache_.Init(info)) return s;
    const size_t nbytes = static_cast<size_t>(view.nbytes());
    if (!cache_.Allocate(nbytes)) {
      return MakeStatus(ORT_FAIL, Prefix() + "OUT_OF_MEMORY: cannot allocate " + std::to_string(nbytes) +
                                      " bytes for the decoded tensor");
    }
    if (OrtStatusPtr s = Check(DecodeInto(view, cache_.data(), nbytes, options_))) return s;
    shape_ = Shape(view.header);
    cached_ = true;
    return nullptr;
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    return Guarded(Prefix(), [&]() -> OrtStatusPtr {
      Ort::KernelContext ctx(context);
      if (cached_) {
        Ort::UnownedValue out = ctx.GetOutput(0, shape_);
        if (cache_.size()) std::memcpy(out.GetTensorMutableRawData(), cache_.data(), cache_.size());
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
  KernelCache cache_;
};

}  // namespace

void RegisterCpuOps(Ort::CustomOpDomain& domain, const DecodeOptions& options) {
  RegisterOps<CpuDecodeKernel>(domain, options);
}

}  // namespace ort
}  // namespace udc
