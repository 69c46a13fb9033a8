#include "core/decode.h"

#include <cstdio>
#include <string>

#include "core/plan.h"

namespace udc {

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "onnx-udc writes little-endian element bytes; big-endian hosts are not supported"
#endif

Status Inspect(const uint8_t* blob, size_t blob_len, BlobView* view) {
  if (blob == nullptr && blob_len != 0) return Status(Code::kInvalidArgument, "blob is NULL");
  if (view == nullptr) return Status(Code::kInvalidArgument, "view is NULL");
  *view = BlobView();
  Header& h = view->header;
  UDC_RETURN_IF_ERROR(ParseHeader(blob, blob_len, &h));

  view->quantizer = FindQuantizer(h.quantizer);
  if (view->quantizer == nullptr) {
    return Status(Code::kUnknownQuantizer, "quantizer id " + std::to_string(h.quantizer) + " is unknown (known: " + KnownQuantizers() + ")");
  }
  view->coder = FindCoder(h.coder);
  if (view->coder == nullptr) {
    return Status(Code::kUnknownCoder, "coder id " + std::to_string(h.coder) + " is unknown (known: " + KnownCoders() + ")");
  }
  UDC_RETURN_IF_ERROR(view->quantizer->Validate(h));
  UDC_RETURN_IF_ERROR(CheckSymbolWidth(h));  // every quantizer must ensure it
  if (h.symbol_bytes() > kMaxSymbolBytes) {
    return Status(Code::kLimitExceeded, "numel * symbol_width = " + std::to_string(h.symbol_bytes()) +
                                            " bytes exceeds the limit 2^36");
  }
  const uint64_t expansion = ExpansionLimit(blob_len);
  if (h.element_bytes() > expansion || h.symbol_bytes() > expansion) {
    return Status(Code::kLimitExceeded,
                  "a " + std::to_string(blob_len) + "-byte blob declares " + std::to_string(h.element_bytes()) +
                      " decoded bytes (" + std::to_string(h.symbol_bytes()) +
                      " symbol bytes), above its expansion limit 2^20 + 1024 * blob length = " +
                      std::to_string(expansion));
  }
  if (h.symbol_bytes() > SIZE_MAX || h.element_bytes() > SIZE_MAX) {
    return Status(Code::kLimitExceeded, "decoded size " + std::to_string(h.element_bytes()) +
                                            " bytes does not fit this platform's address space");
  }

  const uint32_t crc = BlobChecksum(blob, blob_len);
  if (crc != h.checksum) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "checksum field is 0x%08x but the blob's CRC-32 is 0x%08x", h.checksum, crc);
    return Status(Code::kChecksumMismatch, buf);
  }
  return Status::Ok();
}

Status CheckOutputCap(const BlobView& view, const DecodeOptions& opt) {
  if (opt.max_output_bytes != 0 && view.nbytes() > opt.max_output_bytes) {
    return Status(Code::kLimitExceeded, "decoded size " + std::to_string(view.nbytes()) +
                                            " bytes exceeds max_output_bytes " + std::to_string(opt.max_output_bytes));
  }
  return Status::Ok();
}

Status CheckOutput(const BlobView& view, const void* out, size_t out_len) {
  if (view.quantizer == nullptr || view.coder == nullptr) {
    return Status(Code::kInvalidArgument, "blob view was not filled by Inspect");
  }
  if (uint64_t{out_len} != view.nbytes()) {
    return Status(Code::kBufferSize, "output buffer has " + std::to_string(out_len) + " bytes, the tensor needs " +
                                         std::to_string(view.nbytes()) + " (numel " + std::to_string(view.header.numel) +
                                         " * " + std::to_string(DTypeSize(view.header.dtype)) + ")");
  }
  if (out == nullptr && out_len != 0) return Status(Code::kInvalidArgument, "output buffer is NULL");
  return Status::Ok();
}

namespace {

// The coder's planar symbols of an inspected blob, checked by the quantizer.
Status DecodeSymbols(const BlobView& view, ByteBuffer* scratch, const uint8_t** symbols, uint64_t* count) {
  const Header& h = view.header;
  *count = view.quantizer->SymbolCount(h);  // numel, or one symbol per block (pq)
  UDC_RETURN_IF_ERROR(view.coder->Decode(h.payload, h.coded_len, *count, h.symbol_width, scratch, symbols));
  if (h.numel == 0) return Status::Ok();
  return view.quantizer->CheckSymbols(h, *symbols);
}

}  // namespace

Status DecodeInto(const BlobView& view, void* out, size_t out_len, const DecodeOptions& opt) {
  UDC_RETURN_IF_ERROR(CheckOutputCap(view, opt));
  UDC_RETURN_IF_ERROR(CheckOutput(view, out, out_len));
  ByteBuffer scratch;
  const uint8_t* symbols = nullptr;
  uint64_t count = 0;
  UDC_RETURN_IF_ERROR(DecodeSymbols(view, &scratch, &symbols, &count));
  if (view.header.numel != 0) view.quantizer->Dequantize(view.header, symbols, static_cast<uint8_t*>(out), opt);
  return Status::Ok();
}

Status Prepare(const BlobView& view, Prepared* out) {
  if (view.quantizer == nullptr || view.coder == nullptr) {
    return Status(Code::kInvalidArgument, "blob view was not filled by Inspect");
  }
  uint64_t count = 0;
  UDC_RETURN_IF_ERROR(DecodeSymbols(view, &out->scratch, &out->symbols, &count));
  out->symbol_bytes = count * view.header.symbol_width;
  view.quantizer->Plan(view.header, &out->plan);
  if (view.header.numel == 0) out->plan.units = 0;
  return Status::Ok();
}

Status DecodeUnitsOnHost(const BlobView& view, void* out, size_t out_len, const DecodeOptions& opt) {
  UDC_RETURN_IF_ERROR(CheckOutputCap(view, opt));
  UDC_RETURN_IF_ERROR(CheckOutput(view, out, out_len));
  Prepared prepared;
  UDC_RETURN_IF_ERROR(Prepare(view, &prepared));
  ReconstructOnHost(prepared.plan, prepared.symbols, view.header.params, static_cast<uint8_t*>(out));
  return Status::Ok();
}

Status Decode(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, const DecodeOptions& opt) {
  BlobView view;
  UDC_RETURN_IF_ERROR(Inspect(blob, blob_len, &view));
  return DecodeInto(view, out, out_len, opt);
}

}  // namespace udc
