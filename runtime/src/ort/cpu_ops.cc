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
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/decode.h"

namespace udc {
namespace ort {
namespace {

struct OpSpec {
  const char* name;
  ONNXTensorElementDataType ort_type;
  DType dtype;
};

// The decoded tensor: shape and element bytes.
struct Decoded {
  std::vector<int64_t> shape;
  ByteBuffer bytes;
  size_t nbytes = 0;
};

OrtStatusPtr MakeStatus(OrtErrorCode code, const std::string& message) {
  return Ort::GetApi().CreateStatus(code, message.c_str());
}

class DecodeKernel {
 public:
  DecodeKernel(const OpSpec& spec, std::string node_name) : spec_(spec), node_name_(std::move(node_name)) {}

  // Reads the blob at kernel creation when it is a constant initializer.
  OrtStatusPtr Init(const OrtKernelInfo* info) {
    Ort::ConstKernelInfo kinfo(info);
    int is_constant = 0;
    Ort::ConstValue blob = kinfo.GetTensorConstantInput(0, &is_constant);
    if (!is_constant) return nullptr;  // decode in every Compute

    const uint8_t* data = nullptr;
    size_t len = 0;
    if (OrtStatusPtr s = BlobBytes(blob, &data, &len)) return s;
    BlobView view;
    if (OrtStatusPtr s = InspectBlob(data, len, &view)) return s;
    cache_.nbytes = static_cast<size_t>(view.nbytes());
    cache_.bytes.reset(new uint8_t[cache_.nbytes ? cache_.nbytes : 1]);
    if (OrtStatusPtr s = Check(DecodeInto(view, cache_.bytes.get(), cache_.nbytes))) return s;
    cache_.shape = Shape(view.header);
    cached_ = true;
    return nullptr;
  }

  OrtStatusPtr ComputeV2(OrtKernelContext* context) {
    try {
      Ort::KernelContext ctx(context);
      if (cached_) {
        Ort::UnownedValue out = ctx.GetOutput(0, cache_.shape);
        if (cache_.nbytes) std::memcpy(out.GetTensorMutableRawData(), cache_.bytes.get(), cache_.nbytes);
        return nullptr;
      }
      Ort::ConstValue blob = ctx.GetInput(0);
      const uint8_t* data = nullptr;
      size_t len = 0;
      if (OrtStatusPtr s = BlobBytes(blob, &data, &len)) return s;
      BlobView view;
      if (OrtStatusPtr s = InspectBlob(data, len, &view)) return s;
      Ort::UnownedValue out = ctx.GetOutput(0, Shape(view.header));
      const size_t nbytes = static_cast<size_t>(view.nbytes());
      return Check(DecodeInto(view, nbytes ? out.GetTensorMutableRawData() : nullptr, nbytes));
    } catch (const Ort::Exception& e) {
      return MakeStatus(e.GetOrtErrorCode(), Prefix() + e.what());
    } catch (const std::bad_alloc&) {
      return MakeStatus(ORT_FAIL, Prefix() + "OUT_OF_MEMORY: out of memory while decoding the blob");
    } catch (const std::exception& e) {
      return MakeStatus(ORT_FAIL, Prefix() + "INTERNAL: " + e.what());
    } catch (...) {
      return MakeStatus(ORT_FAIL, Prefix() + "INTERNAL: unknown C++ exception");
    }
  }

 private:
  std::string Prefix() const {
    return "onnx_udc: node '" + node_name_ + "' (ai.onnx_udc." + spec_.name + "): ";
  }

  OrtStatusPtr Check(const Status& s) const {
    if (s.ok()) return nullptr;
    const OrtErrorCode code = s.code() == Code::kOutOfMemory || s.code() == Code::kInternal ? ORT_FAIL : ORT_INVALID_GRAPH;
    return MakeStatus(code, Prefix() + CodeName(s.code()) + ": " + s.message());
  }

  // The blob input must be a 1-D uint8 tensor (onnxruntime already checks the type).
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

  static std::vector<int64_t> Shape(const Header& h) {
    std::vector<int64_t> shape(h.ndim);
    for (unsigned d = 0; d < h.ndim; ++d) shape[d] = static_cast<int64_t>(h.shape[d]);  // <= 2^40
    return shape;
  }

  const OpSpec& spec_;
  std::string node_name_;
  bool cached_ = false;
  Decoded cache_;
};

class DecodeOp : public Ort::CustomOpBase<DecodeOp, DecodeKernel, /*WithStatus=*/true> {
 public:
  explicit DecodeOp(const OpSpec& spec) : spec_(spec) {}

  OrtStatusPtr CreateKernelV2(const OrtApi& /*api*/, const OrtKernelInfo* info, void** op_kernel) const {
    *op_kernel = nullptr;
    std::string node = "?";
    try {
      node = Ort::ConstKernelInfo(info).GetNodeName();
      auto kernel = std::make_unique<DecodeKernel>(spec_, node);
      if (OrtStatusPtr s = kernel->Init(info)) return s;
      *op_kernel = kernel.release();
      return nullptr;
    } catch (const Ort::Exception& e) {
      return MakeStatus(e.GetOrtErrorCode(), Prefix(node) + e.what());
    } catch (const std::bad_alloc&) {
      return MakeStatus(ORT_FAIL, Prefix(node) + "OUT_OF_MEMORY: out of memory while decoding the blob");
    } catch (const std::exception& e) {
      return MakeStatus(ORT_FAIL, Prefix(node) + "INTERNAL: " + e.what());
    } catch (...) {
      return MakeStatus(ORT_FAIL, Prefix(node) + "INTERNAL: unknown C++ exception");
    }
  }

  const char* GetName() const { return spec_.name; }
  const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
  size_t GetInputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetInputType(size_t /*index*/) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8; }
  size_t GetOutputTypeCount() const { return 1; }
  ONNXTensorElementDataType GetOutputType(size_t /*index*/) const { return spec_.ort_type; }

 private:
  std::string Prefix(const std::string& node) const {
    return "onnx_udc: node '" + node + "' (ai.onnx_udc." + spec_.name + "): ";
  }

  const OpSpec& spec_;
};

// FORMAT.md section 1: one op per decoded element type.
const OpSpec kSpecs[] = {
    {"Decode", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, DType::kFloat},
    {"DecodeUInt8", ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, DType::kUInt8},
    {"DecodeInt8", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, DType::kInt8},
    {"DecodeInt32", ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, DType::kInt32},
    {"DecodeFloat16", ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, DType::kFloat16},
};

}  // namespace

void RegisterCpuOps(Ort::CustomOpDomain& domain) {
  static const DecodeOp kOps[] = {DecodeOp(kSpecs[0]), DecodeOp(kSpecs[1]), DecodeOp(kSpecs[2]),
                                  DecodeOp(kSpecs[3]), DecodeOp(kSpecs[4])};
  static_assert(sizeof kOps / sizeof kOps[0] == sizeof kSpecs / sizeof kSpecs[0], "one op per spec");
  for (const DecodeOp& op : kOps) domain.Add(&op);
}

}  // namespace ort
}  // namespace udc
