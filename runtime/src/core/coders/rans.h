// rans.h - coder 3 ("rans", FORMAT.md section 5.3): static per-context frequency tables
// sent in the payload, interleaved rANS lanes. The Coder strategy (coders.cc table)
// decodes into planar bytes; RansDecode is what the C API exposes to the Python side and
// tests. The encoder is src/encode/rans_encoder.h (library udc_encode).
#ifndef UDC_CORE_CODERS_RANS_H_
#define UDC_CORE_CODERS_RANS_H_

#include <cstdint>

#include "core/status.h"

namespace udc {

// payload -> exactly numel symbols into out[numel]; kCorruptPayload on any inconsistency.
Status RansDecode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                  uint32_t* out);

}  // namespace udc

#endif  // UDC_CORE_CODERS_RANS_H_
