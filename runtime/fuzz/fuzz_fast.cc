// fuzz_fast - libFuzzer target for the C fast loader's model rewrite (udc_fast_model_*,
// src/fast): untrusted ModelProto bytes through the protobuf wire reader, the decode-node
// search, the blob decoder and the writer.
//
// Properties, for any input:
//   - udc_fast_model_create returns a status of onnx_udc.h with a NUL-terminated message,
//     never crashes, never reads outside the input (AddressSanitizer), never leaks;
//   - on success every tensor is consistent (nbytes = numel x element size) and the
//     rewrite is a fixed point: the rewritten bytes, prepared again, give OK, no tensors
//     and the same bytes (no main-graph decode node is left).
// Blobs are decoded with a 2 MiB cap (max_output_bytes) so that runs stay small; no
// base_dir, so external data is refused without touching the file system.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "core/format.h"
#include "onnx_udc.h"

namespace {

constexpr uint64_t kMaxFuzzOutput = uint64_t{2} << 20;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  udc_decode_options opt;
  if (udc_decode_options_init(&opt, sizeof opt) != UDC_OK) std::abort();
  opt.threads = 1;
  opt.max_output_bytes = kMaxFuzzOutput;
  udc_fast_model* model = nullptr;
  char err[512];
  const int rc = udc_fast_model_create(data, size, nullptr, &opt, &model, err, sizeof err);
  if (rc < 0 || rc > UDC_RUNTIME_ERROR || std::memchr(err, '\0', sizeof err) == nullptr) std::abort();
  if (rc != UDC_OK) {
    if (model != nullptr) std::abort();
    return 0;
  }
  for (size_t i = 0; i < udc_fast_model_tensor_count(model); ++i) {
    udc_fast_tensor t;
    if (udc_fast_model_tensor(model, i, &t) != UDC_OK || t.name == nullptr || t.data == nullptr) std::abort();
    uint64_t numel = 1;
    for (uint32_t d = 0; d < t.ndim; ++d) numel *= static_cast<uint64_t>(t.shape[d]);
    if (t.dtype > 255 || numel * udc::DTypeSize(static_cast<uint8_t>(t.dtype)) != t.nbytes || t.nbytes > kMaxFuzzOutput) std::abort();
    if (t.nbytes > 0) {
      volatile uint8_t sink = static_cast<const uint8_t*>(t.data)[t.nbytes - 1];  // readable to the end
      (void)sink;
    }
  }
  udc_fast_tensor none;
  if (udc_fast_model_tensor(model, udc_fast_model_tensor_count(model), &none) != UDC_INVALID_ARGUMENT) std::abort();
  size_t len = 0;
  const uint8_t* bytes = udc_fast_model_bytes(model, &len);
  udc_fast_model* again = nullptr;
  if (udc_fast_model_create(bytes, len, nullptr, &opt, &again, nullptr, 0) != UDC_OK) std::abort();
  size_t len2 = 0;
  const uint8_t* bytes2 = udc_fast_model_bytes(again, &len2);
  if (udc_fast_model_tensor_count(again) != 0 || len2 != len || (len && std::memcmp(bytes, bytes2, len) != 0)) {
    std::abort();
  }
  udc_fast_model_release(again);
  udc_fast_model_release(model);
  return 0;
}
