// planar.h - the Coder::Decode shell of the coders that produce symbols one at a time
// (range, rans): the scratch buffer of numel * width bytes and a sink that writes symbol i
// as planar bytes (FORMAT.md section 3: byte k of symbol i at k * numel + i).
#ifndef UDC_CORE_CODERS_PLANAR_H_
#define UDC_CORE_CODERS_PLANAR_H_

#include <cstdint>
#include <string>

#include "core/coders.h"

namespace udc {

// decode(sink) runs the coder's stream decoder with sink(i, symbol) and returns its Status;
// it is called once, with a sink specialised for the width (captures by value: the output
// pointer is not reloaded after every byte store).
template <class DecodeFn>
Status DecodePlanar(uint64_t numel, unsigned symbol_width, ByteBuffer* scratch, const uint8_t** symbols,
                    DecodeFn&& decode) {
  const uint64_t expected = numel * symbol_width;
  if (expected > SIZE_MAX) {
    return Status(Code::kLimitExceeded,
                  "symbol stream of " + std::to_string(expected) + " bytes does not fit this platform's address space");
  }
  scratch->reset(new uint8_t[expected ? expected : 1]);
  uint8_t* out = scratch->get();
  Status st;
  switch (symbol_width) {
    case 1:
      st = decode([out](uint64_t i, uint32_t v) { out[i] = static_cast<uint8_t>(v); });
      break;
    case 2:
      st = decode([out, numel](uint64_t i, uint32_t v) {
        out[i] = static_cast<uint8_t>(v);
        out[numel + i] = static_cast<uint8_t>(v >> 8);
      });
      break;
    default:
      st = decode([out, numel](uint64_t i, uint32_t v) {
        for (unsigned k = 0; k < 4; ++k) out[k * numel + i] = static_cast<uint8_t>(v >> (8 * k));
      });
      break;
  }
  if (!st.ok()) return st;
  *symbols = out;
  return Status::Ok();
}

}  // namespace udc

#endif  // UDC_CORE_CODERS_PLANAR_H_
