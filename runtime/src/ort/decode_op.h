// decode_op.h - what the CPU and CUDA decode ops share: the op table of FORMAT.md section 1,
// blob access and checks, error statuses that name the node, and the custom-op class.
//
//   DecodeOp<Kernel>  (one per output dtype, execution provider and set of decode options)
//     CreateKernelV2 -> Kernel(spec, node name, options).Init(info)   errors -> OrtStatus, never abort
//     KernelComputeV2 -> Kernel::ComputeV2(context)                   likewise
// A Kernel derives from KernelBase and declares kProvider (the execution provider's name)
// and kBlobMemory (where onnxruntime must put the blob input).
#ifndef UDC_ORT_DECODE_OP_H_
#define UDC_ORT_DECODE_OP_H_

#include <iterator>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/decode.h"
#include "ort/ort_include.h"

namespace udc {
namespace ort {

// FORMAT.md section 1: one op per decoded element type (core/format.h kDecodeOps).
using OpSpec = DecodeOpType;
inline constexpr const OpSpec (&kSpecs)[std::size(kDecodeOps)] = kDecodeOps;

// onnxruntime's element types are ONNX's TensorProto.DataType codes, as DType's are.
inline constexpr ONNXTensorElementDataType OrtType(DType dtype) {
  return static_cast<ONNXTensorElementDataType>(static_cast<int>(dtype));
}
static_assert(OrtType(DType::kFloat) == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT &&
                  OrtType(DType::kUInt8) == ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 &&
                  OrtType(DType::kInt8) == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 &&
                  OrtType(DType::kInt32) == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 &&
                  OrtType(DType::kFloat16) == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16,
              "DType codes are onnxruntime's element types");

inline OrtStatusPtr MakeStatus(OrtErrorCode code, const std::string& message) {
  return Ort::GetApi().CreateStatus(code, message.c_str());
}

inline std::string NodePrefix(const std::string& node, const OpSpec& spec) {
  return "onnx_udc: node '" + node + "' (ai.onnx_udc." + spec.name + "): ";
}

// Runs fn() (returning OrtStatusPtr); any C++ exception becomes an OrtStatus with `prefix`.
template <typename Fn>
OrtStatusPtr Guarded(const std::string& prefix, Fn&& fn) {
  try {
    return fn();
  } catch (const Ort::Exception& e) {
    return MakeStatus(e.GetOrtErrorCode(), prefix + e.what());
  } catch (const std::bad_alloc&) {
    return MakeStatus(ORT_FAIL, prefix + "OUT_OF_MEMORY: out of memory while decoding the blob");
  } catch (const std::exception& e) {
    return MakeStatus(ORT_FAIL, prefix + "INTERNAL: " + e.what());
  } catch (...) {
    return MakeStatus(ORT_FAIL, prefix + "INTERNAL: unknown C++ exception");
  }
}

// The allocation policy of every kernel's cache (CPU and CUDA alike): the decoded tensor a
// kernel keeps lives in memory from the allocator onnxruntime gives that kernel for its
// execution provider (KernelInfoGetAllocator, OrtMemTypeDefault: the CPU provider's
// allocator, the CUDA provider's device allocator), held by this RAII holder, which frees
// it with that allocator and releases the allocator when the kernel is destroyed. So the
// cache sits where the node's output would, is aligned as onnxruntime aligns tensors, and
// counts against the provider's memory accounting and limits (arena, gpu_mem_limit). The
// allocator object keeps the session's allocator alive while the kernel exists.
class KernelCache {
 public:
  KernelCache() = default;
  KernelCache(const KernelCache&) = delete;
  KernelCache& operator=(const KernelCache&) = delete;
  ~KernelCache() {
    if (data_ != nullptr) allocator_->Free(allocator_, data_);
    if (allocator_ != nullptr) Ort::GetApi().ReleaseAllocator(allocator_);
  }

  // Takes the kernel's allocator; call once, in Init.
  OrtStatusPtr Init(const OrtKernelInfo* info) {
    return Ort::GetApi().KernelInfoGetAllocator(info, OrtMemTypeDefault, &allocator_);
  }

  // Where the allocator's memory lives (its device id for CUDA).
  OrtStatusPtr MemoryInfo(const OrtMemoryInfo** info) const {
    return Ort::GetApi().AllocatorGetInfo(allocator_, info);
  }

  // bytes of the allocator's memory (none for 0 bytes: data() stays null); false when the
  // allocator returns null. Call once, after Init.
  bool Allocate(size_t bytes) {
    size_ = bytes;
    if (bytes == 0) return true;
    data_ = allocator_->Alloc(allocator_, bytes);  // onnxruntime's allocators may also throw
    return data_ != nullptr;
  }

  void* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  OrtAllocator* allocator_ = nullptr;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Blob access and checks for one node.
class KernelBase {
 public:
  KernelBase(const OpSpec& spec, std::string node_name, const DecodeOptions& options)
      : spec_(spec), node_name_(std::move(node_name)), options_(options) {}

 protected:
  std::string Prefix() const { return NodePrefix(node_name_, spec_); }

  // Status -> OrtStatus naming the node and the status (nullptr for ok).
  OrtStatusPtr Check(const Status& s) const {
    if (s.ok()) return nullptr;
    const bool runtime_failure = s.code() == Code::kOutOfMemory || s.code() == Code::kInternal ||
                                 s.code() == Code::kDeviceError || s.code() == Code::kUnavailable;
    return MakeStatus(runtime_failure ? ORT_FAIL : ORT_INVALID_GRAPH, Prefix() + CodeName(s.code()) + ": " + s.message());
  }

  // The blob input must be a 1-D uint8 tensor in host memory.
  OrtStatusPtr BlobBytes(const Ort::ConstValue& blob, const uint8_t** data, size_t* len) const {
    Ort::TensorTypeAndShapeInfo info = blob.GetTensorTypeAndShapeInfo();
    if (info.GetElementType() != ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 || info.GetDimensionsCount() != 1) {
      return MakeStatus(ORT_INVALID_GRAPH, Prefix() + "INVALID_ARGUMENT: the blob input must be a 1-D uint8 tensor");
    }
    *len = info.GetElementCount();
    *data = static_cast<const uint8_t*>(blob.GetTensorRawData());
    if (*data == nullptr && *len != 0) {
      return MakeStatus(ORT_INVALID_GRAPH, Prefix() + "INVALID_ARGUMENT: the blob tensor has no data");
    }
    static const uint8_t kEmpty = 0;
    if (*data == nullptr) *data = &kEmpty;
    return nullptr;
  }

  OrtStatusPtr InspectValue(const Ort::ConstValue& blob, BlobView* view) const {
    const uint8_t* data = nullptr;
    size_t len = 0;
    if (OrtStatusPtr s = BlobBytes(blob, &data, &len)) return s;
    return InspectBlob(data, len, view);
  }

  // Inspect (header, limits, checksum) + the op's dtype.
  OrtStatusPtr InspectBlob(const uint8_t* data, size_t len, BlobView* view) const {
    if (OrtStatusPtr s = Check(Inspect(data, len, view))) return s;
    if (view->header.dtype != static_cast<uint8_t>(spec_.dtype)) {
      return MakeStatus(ORT_INVALID_GRAPH,
                        Prefix() + "BAD_HEADER: blob dtype is " + std::to_string(view->header.dtype) + " (" +
                            DTypeName(view->header.dtype) + ") but op " + spec_.name + " outputs " +
                            DTypeName(static_cast<uint8_t>(spec_.dtype)));
    }
    return nullptr;
  }

  // The blob when it is a constant initializer (at kernel creation), inspected; *found is
  // false for a blob fed at run time.
  OrtStatusPtr ConstantBlob(const OrtKernelInfo* info, bool* found, BlobView* view) const {
    int is_constant = 0;
    Ort::ConstValue blob = Ort::ConstKernelInfo(info).GetTensorConstantInput(0, &is_constant);
    *found = is_constant != 0;
    if (!*found) return nullptr;
    return InspectValue(blob, view);
  }

  // The blob input of this run, inspected.
  OrtStatusPtr RunBlob(Ort::KernelContext& ctx, BlobView* view) const { return InspectValue(ctx.GetInput(0), view); }

  static std::vector<int64_t> Shape(const Header& h) {
    std::vector<int64_t> shape(h.ndim);
    for (unsigned d = 0; d < h.ndim; ++d) shape[d] = static_cast<int64_t>(h.shape[d]);  // <= 2^40
    return shape;
  }

  const OpSpec& spec_;
  std::string node_name_;
  const DecodeOptions options_;  // the session's (ort/options.h): threads, max_output_bytes
};

template <class Kernel>
class DecodeOp : public Ort::CustomOpBase<DecodeOp<Kernel>, Kernel, /*WithStatus=*/true> {
 public:
  DecodeOp(const OpSpec& spec, const DecodeOptions& options) : spec_(spec), options_(options) {}

  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* info, void** op_kernel) const {
    *op_kernel = nullptr;
    std::string node = "?";
    try {
      node = Ort::ConstKernelInfo(info).GetNodeName();
    } catch (...) {
    }
    return Guarded(NodePrefix(node, spec_), [&]() -> OrtStatusPtr {
      auto kernel = std::make_unique<Kernel>(spec_, node, options_);
      if (OrtStatusPtr s = kernel->Init(info)) return s;
      *op_kernel = kernel.release();
      return nullptr;
    });
  }

  const char* GetName() const { return spec_.name; }
  const char* GetExecutionProviderType() const { return Kernel::kProvider; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8; }
  OrtMemType GetInputMemoryType(size_t /*index*/) const { return Kernel::kBlobMemory; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return OrtType(spec_.dtype); }

 private:
  const OpSpec& spec_;
  const DecodeOptions options_;
};

// The ops of kSpecs for one Kernel and one set of options, added to `domain`. The op
// objects are never freed, like the domain (register.cc): sessions keep raw pointers to
// them, and they must outlive every session.
template <class Kernel>
void RegisterOps(Ort::CustomOpDomain& domain, const DecodeOptions& options) {
  for (const OpSpec& spec : kSpecs) domain.Add(new DecodeOp<Kernel>(spec, options));  // intentionally leaked
}

}  // namespace ort
}  // namespace udc

#endif  // UDC_ORT_DECODE_OP_H_
