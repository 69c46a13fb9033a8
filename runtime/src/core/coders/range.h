// range.h - coder 2 ("range", FORMAT.md section 5.2): an adaptive context-modelling binary
// range coder on unsigned symbols. The Coder strategy (coders.cc table) decodes into planar
// bytes; RangeDecode is what the C API exposes to the Python side and tests. The encoder
// is not part of the decoding core: src/encode/range_encoder.h (library udc_encode).
#ifndef UDC_CORE_CODERS_RANGE_H_
#define UDC_CORE_CODERS_RANGE_H_

#include <cstdint>

#include "core/status.h"

namespace udc {

// payload -> exactly numel symbols into out[numel]; kCorruptPayload on any inconsistency.
Status RangeDecode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                   uint32_t* out);

}  // namespace udc

#endif  // UDC_CORE_CODERS_RANGE_H_
