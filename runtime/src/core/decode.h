// decode.h - the whole decoding pipeline of one blob:
//
//   blob --ParseHeader--> Header --registry--> Quantizer, Coder --Validate--> limits
//        --checksum--> Coder::Decode (payload -> planar symbols) --Quantizer::Dequantize--> out
//
// Validation order (the first failing check is reported): length >= 40, magic, version,
// flags, ndim, declared length, dimension/numel limits, quantizer id, coder id,
// quantizer-specific fields (dtype, width, step, seed, params), symbol-byte limit,
// checksum; then the payload.
#ifndef UDC_CORE_DECODE_H_
#define UDC_CORE_DECODE_H_

#include <cstddef>
#include <cstdint>

#include "core/coders.h"
#include "core/format.h"
#include "core/quantizers.h"
#include "core/status.h"

namespace udc {

// A blob that passed every check except the payload itself.
struct BlobView {
  Header header;
  const Quantizer* quantizer = nullptr;
  const Coder* coder = nullptr;
  // Decoded size in bytes: numel * element size of header.dtype.
  uint64_t nbytes() const { return header.element_bytes(); }
};

// All checks except decoding the payload (header, limits, quantizer fields, checksum).
Status Inspect(const uint8_t* blob, size_t blob_len, BlobView* view);

// Decodes an inspected blob into out; out_len must equal view.nbytes() (kBufferSize).
// May throw std::bad_alloc.
Status DecodeInto(const BlobView& view, void* out, size_t out_len, const DecodeOptions& opt = {});

// Inspect + DecodeInto. May throw std::bad_alloc.
Status Decode(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, const DecodeOptions& opt = {});

}  // namespace udc

#endif  // UDC_CORE_DECODE_H_
