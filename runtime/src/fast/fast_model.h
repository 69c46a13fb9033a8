// fast_model.h - the fast loader without Python: a compressed model's blobs decoded once,
// and the model rewritten so that onnxruntime sees ordinary constant initializers.
//
//   model bytes --ParseModel--> main-graph decode nodes + their blob initializers
//               --Decode (each blob once, in parallel)--> dense tensors
//               --Rewrite--> the model without those decode nodes, each blob initializer
//                            replaced in place by a placeholder (name = the decode node's
//                            output, its dtype and dims, data_location EXTERNAL, location
//                            "onnx_udc.decoded") that the caller fills from the dense
//                            tensors (onnxruntime's AddExternalInitializers)
//
// The same rewrite as the Python fast loader (onnx_udc/load/session.py prepare_fast): the
// two produce equal ModelProtos and identical tensor bytes (tests/test_capi_fast.py).
// Decode nodes inside subgraphs (compress never writes them there) stay; the caller then
// registers the custom ops too (needs_custom_ops).
#ifndef UDC_FAST_FAST_MODEL_H_
#define UDC_FAST_FAST_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "core/options.h"
#include "core/status.h"

namespace udc {
namespace fast {

// 64-byte-aligned memory from operator new (no shared_ptr: its reference count would tie
// the library to glibc 2.32's __libc_single_threaded, above the wheel's manylinux_2_28).
struct AlignedDelete {
  void operator()(uint8_t* p) const { ::operator delete(p, std::align_val_t(64)); }
};

// A decoded tensor; `data` is 64-byte aligned and holds nbytes bytes.
struct DenseTensor {
  std::string name;
  uint8_t dtype = 0;  // ONNX TensorProto.DataType
  std::vector<int64_t> shape;
  uint64_t nbytes = 0;
  std::unique_ptr<uint8_t, AlignedDelete> data;
};

struct FastModel {
  std::string model;                // the rewritten ModelProto
  std::vector<DenseTensor> tensors;  // in the order of the decode nodes
  bool needs_custom_ops = false;     // ai.onnx_udc nodes remain (in subgraphs)
};

struct FastOptions {
  DecodeOptions decode;  // threads: for all blobs together (0: hardware, at most 8)
  // The folder of the model file, for blobs stored as external data (relative locations
  // only, never outside it). Empty: a blob with external data is kBadModel.
  std::string base_dir;
};

// The whole pipeline above. Errors: kBadModel (not a ModelProto, a decode node without
// its blob initializer, a blob that is not uint8, a blob whose dtype is not its op's),
// kIoError (external data), or the blob decoder's own status with the tensor named.
Status PrepareFast(const uint8_t* model, size_t model_len, const FastOptions& options, FastModel* out);

}  // namespace fast
}  // namespace udc

#endif  // UDC_FAST_FAST_MODEL_H_
