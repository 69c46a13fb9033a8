// fuzz_rans - libFuzzer target for coder 3 (FORMAT.md 5.3) through the C API, decoder and
// encoder both.
//
// Input: byte 0 picks the symbol width (1, 2, 4) and the encoder's forced parameters;
// bytes 1-2 give numel (u16 LE, at most 65535 and 8 per payload byte + 64); the rest is a
// rans payload. Properties:
//   - udc_rans_decode never fails other than with CORRUPT_PAYLOAD, and never reads past
//     the payload (AddressSanitizer);
//   - a payload that decodes re-encodes (chosen parameters, and the payload's own) to a
//     payload that decodes to the same symbols;
//   - the symbols of the input bytes themselves (masked to the width) survive
//     encode -> decode with parameters picked by byte 0 (the encoder's fuzzing; the first
//     256 payload bytes).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "onnx_udc.h"

namespace {

void RoundTrip(const std::vector<uint32_t>& symbols, uint32_t width, uint32_t lanes, uint32_t prob_bits,
               uint32_t contexts, uint32_t shift) {
  size_t need = 0;
  int rc = udc_rans_encode(symbols.data(), symbols.size(), width, lanes, prob_bits, contexts, shift, nullptr, 0,
                           &need, nullptr, 0);
  if (rc != UDC_BUFFER_SIZE && rc != UDC_OK) std::abort();
  std::vector<uint8_t> payload(need ? need : 1);
  size_t len = 0;
  rc = udc_rans_encode(symbols.data(), symbols.size(), width, lanes, prob_bits, contexts, shift, payload.data(),
                       payload.size(), &len, nullptr, 0);
  if (rc != UDC_OK || len != need) std::abort();
  std::vector<uint32_t> back(symbols.size() + 1);
  rc = udc_rans_decode(payload.data(), len, symbols.size(), width, back.data(), nullptr, 0);
  if (rc != UDC_OK) std::abort();
  if (!symbols.empty() && std::memcmp(back.data(), symbols.data(), symbols.size() * sizeof(uint32_t)) != 0) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  static const uint32_t kWidths[] = {1, 2, 4};
  const uint32_t width = kWidths[data[0] % 3];
  const uint64_t numel = std::min<uint64_t>(uint64_t{data[1]} | (uint64_t{data[2]} << 8), 8 * (size - 3) + 64);
  const uint8_t* payload = data + 3;
  const size_t payload_len = size - 3;

  std::vector<uint32_t> symbols(numel + 1);
  char err[256];
  const int rc = udc_rans_decode(payload, payload_len, numel, width, symbols.data(), err, sizeof err);
  if (rc != UDC_OK && rc != UDC_CORRUPT_PAYLOAD) std::abort();
  if (std::memchr(err, '\0', sizeof err) == nullptr) std::abort();
  if (rc == UDC_OK) {
    symbols.resize(numel);
    const uint64_t limit = width == 4 ? ~uint64_t{0} : (uint64_t{1} << (8 * width));
    for (uint32_t s : symbols) if (s >= limit) std::abort();
    RoundTrip(symbols, width, 0, 0, 0, 0);
    RoundTrip(symbols, width, payload[1], payload[2], payload[3], payload[4]);
  }

  // The encoder on arbitrary symbols: the input bytes (the first 256), grouped by the width.
  std::vector<uint32_t> raw(std::min<size_t>(payload_len, 256) / width);
  for (size_t i = 0; i < raw.size(); ++i) {
    uint32_t v = 0;
    for (uint32_t k = 0; k < width; ++k) v |= uint32_t{payload[i * width + k]} << (8 * k);
    raw[i] = v;
  }
  const uint32_t sel = data[0] / 3;
  RoundTrip(raw, width, 1 + sel % 32, 8 + (sel / 32) % 8, 1 + sel % 16, 1 + (sel / 16) % 8);
  RoundTrip(raw, width, 0, 0, 0, 0);
  return 0;
}
