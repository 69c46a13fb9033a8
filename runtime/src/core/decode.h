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
#include "core/options.h"
#include "core/quantizers.h"
#include "core/reconstruct.h"
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

// The caller's memory cap: kLimitExceeded when opt.max_output_bytes is set and the blob's
// decoded size view.nbytes() exceeds it. Decoders check it before allocating anything for
// the blob (the ops before their output or cache, the CUDA decoder before device memory).
Status CheckOutputCap(const BlobView& view, const DecodeOptions& opt);

// The output buffer for an inspected blob: out_len must equal view.nbytes() (kBufferSize),
// out may be null only when out_len is 0 (kInvalidArgument).
Status CheckOutput(const BlobView& view, const void* out, size_t out_len);

// Decodes an inspected blob into out: CheckOutputCap, CheckOutput (out_len must equal
// view.nbytes()), then the payload on up to opt.max_threads threads. May throw
// std::bad_alloc.
Status DecodeInto(const BlobView& view, void* out, size_t out_len, const DecodeOptions& opt = {});

// What a device decoder needs of an inspected blob: the coder's planar symbols (checked by
// Quantizer::CheckSymbols) and the quantizer's ReconPlan. `symbols` points into the blob
// or into `scratch`; params are view.header.params[0, params_len).
struct Prepared {
  ReconPlan plan;
  ByteBuffer scratch;
  const uint8_t* symbols = nullptr;
  uint64_t symbol_bytes = 0;
};

// Entropy decoding (sequential, on this CPU) + CheckSymbols + Plan. May throw std::bad_alloc.
Status Prepare(const BlobView& view, Prepared* out);

// DecodeInto through Prepare and the element-parallel units of core/reconstruct.h, run on
// this thread (opt.max_threads is not used; opt.max_output_bytes is): the host twin of the
// CUDA decoder, bit-identical to DecodeInto.
Status DecodeUnitsOnHost(const BlobView& view, void* out, size_t out_len, const DecodeOptions& opt = {});

// Inspect + DecodeInto. May throw std::bad_alloc.
Status Decode(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, const DecodeOptions& opt = {});

}  // namespace udc

#endif  // UDC_CORE_DECODE_H_
