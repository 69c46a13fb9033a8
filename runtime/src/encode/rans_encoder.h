// rans_encoder.h - the encoder of coder 3 ("rans", FORMAT.md section 5.3), for the Python
// package (through udc_rans_encode) and tests. Part of udc_encode: the decoding core, the
// fuzzer's decoder side and the CUDA decoder do not link it. The token syntax, the context
// and the lane geometry come from core/coders/rans_model.h, shared with the decoder.
#ifndef UDC_ENCODE_RANS_ENCODER_H_
#define UDC_ENCODE_RANS_ENCODER_H_

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace udc {

// The payload's parameters; 0 means "the encoder chooses" (the smallest payload it
// estimates, FORMAT.md 5.3 informative).
struct RansParams {
  unsigned lanes = 0;      // 1..32
  unsigned prob_bits = 0;  // 8..15
  unsigned contexts = 0;   // 1..16
  unsigned shift = 0;      // 1..8
};

// symbols[numel] (each < 2^(8*symbol_width)) -> payload. kInvalidArgument for a bad width,
// a parameter out of range or a symbol that does not fit the width.
Status RansEncode(const uint32_t* symbols, uint64_t numel, unsigned symbol_width, const RansParams& forced,
                  std::vector<uint8_t>* payload);

// RansEncode on symbols stored in element_bytes (1, 2 or 4) bytes each, native byte order:
// the same payload as RansEncode on the same values (no uint32 copy of narrow symbols).
Status RansEncodeElements(const void* symbols, unsigned element_bytes, uint64_t numel, unsigned symbol_width,
                          const RansParams& forced, std::vector<uint8_t>* payload);

}  // namespace udc

#endif  // UDC_ENCODE_RANS_ENCODER_H_
