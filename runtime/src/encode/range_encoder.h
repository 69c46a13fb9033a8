// range_encoder.h - the encoder of coder 2 ("range", FORMAT.md section 5.2), for the
// Python package (through udc_range_encode*) and tests. Its own static library
// (udc_encode): the decoding core, the fuzzer and the CUDA decoder do not link it. The
// models and the symbol syntax are shared with the decoder (core/coders/range_model.h), so
// the two cannot drift.
#ifndef UDC_ENCODE_RANGE_ENCODER_H_
#define UDC_ENCODE_RANGE_ENCODER_H_

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace udc {

// symbols[numel] (each < 2^(8*symbol_width)) -> payload (period byte + coded stream).
// period is the vector length used as context (1..255; larger values are clamped to 255).
// kInvalidArgument for a bad width, period 0 or a symbol that does not fit the width.
Status RangeEncode(const uint32_t* symbols, uint64_t numel, unsigned symbol_width, uint32_t period,
                   std::vector<uint8_t>* payload);

// The extended header of FORMAT.md 5.2. variant 1: the period (up to 2^20, e.g. the row
// length of a weight matrix) is kept, and a period <= 255 gives RangeEncode's payload byte
// for byte (the short header). variant 2: a model set per vector position (period <= 8).
// kInvalidArgument for another variant or a period out of range.
Status RangeEncodeVariant(const uint32_t* symbols, uint64_t numel, unsigned symbol_width, uint32_t period,
                          unsigned variant, std::vector<uint8_t>* payload);

}  // namespace udc

#endif  // UDC_ENCODE_RANGE_ENCODER_H_
