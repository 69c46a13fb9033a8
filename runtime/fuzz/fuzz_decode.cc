// fuzz_decode - libFuzzer target for the blob decoder (C API): header checks, every coder and
// quantizer, codeword tables, pq params, and the CUDA decoder's element-parallel host twin.
//
//   make fuzz               (clang 19; every runtime source instrumented; docs/fuzzing.md)
//   runtime/build-fuzz/udc_fuzz_decode CORPUS -max_len=4096
// Every blob that decodes must decode to the same bytes through udc_decode_units and
// through udc_decode_ex on one thread.
// Each input is tried twice: as is (exercising the header checks and the checksum), and
// with its checksum field recomputed so the fuzzer also reaches the coders and quantizers.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/format.h"
#include "onnx_udc.h"

namespace {

// Keep each run small: larger tensors take the same code paths (the threaded split starts at
// 2^20 elements, so uint8 and float16 tensors up to 2 MiB still reach it).
constexpr uint64_t kMaxFuzzOutput = uint64_t{2} << 20;

void Try(const uint8_t* data, size_t size) {
  udc_blob_info info;
  char err[256];
  const int rc = udc_inspect(data, size, &info, err, sizeof err);
  if (rc < 0 || rc > UDC_INTERNAL || std::memchr(err, '\0', sizeof err) == nullptr) std::abort();
  if (rc != UDC_OK || info.nbytes > kMaxFuzzOutput) {
    // Decoding must fail with a status at least as early as inspect did.
    if (rc != UDC_OK) {
      uint8_t one = 0;
      const int rc2 = udc_decode(data, size, &one, 1, nullptr, 0);
      if (rc2 != rc) std::abort();
    }
    return;
  }
  std::vector<uint8_t> out(static_cast<size_t>(info.nbytes) + 1);
  const int rc2 = udc_decode(data, size, out.data(), static_cast<size_t>(info.nbytes), err, sizeof err);
  if (rc2 != UDC_OK && rc2 != UDC_CORRUPT_PAYLOAD && rc2 != UDC_OUT_OF_MEMORY) std::abort();
  // The element-parallel path of the CUDA decoder, run on the host: same status, same bytes.
  std::vector<uint8_t> units(static_cast<size_t>(info.nbytes) + 1);
  const int rc3 = udc_decode_units(data, size, units.data(), static_cast<size_t>(info.nbytes), nullptr, 0);
  if (rc3 != rc2) std::abort();
  if (rc2 == UDC_OK && std::memcmp(units.data(), out.data(), static_cast<size_t>(info.nbytes)) != 0) std::abort();
  if (udc_decode(data, size, out.data(), static_cast<size_t>(info.nbytes) + 1, nullptr, 0) != UDC_BUFFER_SIZE) {
    std::abort();
  }
  // udc_decode_ex: one thread and a cap equal to the size give the same status and bytes;
  // a cap one byte below the size is LIMIT_EXCEEDED whatever the payload.
  udc_decode_options opt;
  if (udc_decode_options_init(&opt, sizeof opt) != UDC_OK) std::abort();
  opt.threads = 1;
  opt.max_output_bytes = info.nbytes;
  std::vector<uint8_t> one(static_cast<size_t>(info.nbytes) + 1);
  const int rc4 = udc_decode_ex(data, size, one.data(), static_cast<size_t>(info.nbytes), &opt, nullptr, 0);
  if (rc4 != rc2) std::abort();
  if (rc2 == UDC_OK && std::memcmp(one.data(), out.data(), static_cast<size_t>(info.nbytes)) != 0) std::abort();
  if (info.nbytes > 0) {
    opt.max_output_bytes = info.nbytes - 1;
    if (udc_decode_ex(data, size, one.data(), static_cast<size_t>(info.nbytes), &opt, nullptr, 0) != UDC_LIMIT_EXCEEDED) {
      std::abort();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Try(data, size);
  if (size >= udc::kFixedHeaderSize) {
    std::vector<uint8_t> fixed(data, data + size);
    const uint32_t crc = udc::BlobChecksum(fixed.data(), fixed.size());
    for (int i = 0; i < 4; ++i) fixed[udc::kChecksumOffset + i] = static_cast<uint8_t>(crc >> (8 * i));
    Try(fixed.data(), fixed.size());
  }
  return 0;
}
