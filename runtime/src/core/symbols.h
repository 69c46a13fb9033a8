// symbols.h - reading symbol i from the planar symbol bytes (FORMAT.md section 3):
// byte k of symbol i is at offset k * numel + i.
#ifndef UDC_CORE_SYMBOLS_H_
#define UDC_CORE_SYMBOLS_H_

#include <cstdint>

#include "core/hd.h"

namespace udc {

template <int W>
UDC_HD inline uint32_t PlanarSymbol(const uint8_t* symbols, uint64_t numel, uint64_t i) {
  static_assert(W == 1 || W == 2 || W == 4, "symbol width is 1, 2 or 4");
  uint32_t v = symbols[i];
  if (W >= 2) v |= uint32_t{symbols[numel + i]} << 8;
  if (W >= 4) {
    v |= uint32_t{symbols[2 * numel + i]} << 16;
    v |= uint32_t{symbols[3 * numel + i]} << 24;
  }
  return v;
}

}  // namespace udc

#endif  // UDC_CORE_SYMBOLS_H_
