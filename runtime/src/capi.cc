// capi.cc - the decoding entry points of onnx_udc.h: thin shells on the core that turn
// every C++ exception into a status code. (The encoder's are capi_encode.cc, the CUDA
// ones capi_cuda.cc.)
#include "onnx_udc.h"

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#include "core/coders/range.h"
#include "core/coders/rans.h"
#include "core/decode.h"
#include "core/status.h"
#include "capi_guard.h"

#ifndef UDC_VERSION_STRING
#define UDC_VERSION_STRING "0.0.0"
#endif

static_assert(static_cast<int>(udc::Code::kOk) == UDC_OK, "status numbers");
static_assert(static_cast<int>(udc::Code::kChecksumMismatch) == UDC_CHECKSUM_MISMATCH, "status numbers");
static_assert(static_cast<int>(udc::Code::kInternal) == UDC_INTERNAL, "status numbers");
static_assert(static_cast<int>(udc::Code::kDeviceError) == UDC_DEVICE_ERROR, "status numbers");
static_assert(static_cast<int>(udc::Code::kRuntimeError) == UDC_RUNTIME_ERROR, "status numbers");
static_assert(udc::kMaxNdim == UDC_MAX_NDIM, "ndim limit");

using udc::capi::Guard;
using udc::capi::ReadOptions;

extern "C" {

int udc_inspect(const uint8_t* blob, size_t blob_len, udc_blob_info* info, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (info == nullptr) return udc::Status(udc::Code::kInvalidArgument, "info is NULL");
    std::memset(info, 0, sizeof *info);
    if (blob == nullptr) return udc::Status(udc::Code::kInvalidArgument, "blob is NULL");
    udc::BlobView view;
    UDC_RETURN_IF_ERROR(udc::Inspect(blob, blob_len, &view));
    const udc::Header& h = view.header;
    info->version = h.version;
    info->quantizer = h.quantizer;
    info->coder = h.coder;
    info->dtype = h.dtype;
    info->ndim = h.ndim;
    info->symbol_width = h.symbol_width;
    for (unsigned d = 0; d < h.ndim; ++d) info->shape[d] = h.shape[d];
    info->numel = h.numel;
    info->nbytes = view.nbytes();
    info->step = h.step;
    info->seed = h.seed;
    info->payload_len = h.payload_len;
    return udc::Status::Ok();
  });
}

int udc_decode_options_init(udc_decode_options* options, size_t struct_size) {
  if (options == nullptr || struct_size < udc::capi::kMinOptionsSize || struct_size > udc::capi::kMaxOptionsSize) {
    return UDC_INVALID_ARGUMENT;
  }
  std::memset(options, 0, struct_size);  // every default is 0
  const uint32_t size = static_cast<uint32_t>(struct_size);
  std::memcpy(options, &size, sizeof size);
  return UDC_OK;
}

int udc_decode_ex(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, const udc_decode_options* options,
                  char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (blob == nullptr) return udc::Status(udc::Code::kInvalidArgument, "blob is NULL");
    if (out == nullptr && out_len != 0) return udc::Status(udc::Code::kInvalidArgument, "out is NULL");
    udc::DecodeOptions opt;
    UDC_RETURN_IF_ERROR(ReadOptions(options, &opt));
    return udc::Decode(blob, blob_len, out, out_len, opt);
  });
}

int udc_decode(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, char* err, size_t err_len) {
  return udc_decode_ex(blob, blob_len, out, out_len, nullptr, err, err_len);
}

int udc_decode_units_ex(const uint8_t* blob, size_t blob_len, void* out, size_t out_len,
                        const udc_decode_options* options, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (blob == nullptr) return udc::Status(udc::Code::kInvalidArgument, "blob is NULL");
    if (out == nullptr && out_len != 0) return udc::Status(udc::Code::kInvalidArgument, "out is NULL");
    udc::DecodeOptions opt;
    UDC_RETURN_IF_ERROR(ReadOptions(options, &opt));
    udc::BlobView view;
    UDC_RETURN_IF_ERROR(udc::Inspect(blob, blob_len, &view));
    return udc::DecodeUnitsOnHost(view, out, out_len, opt);
  });
}

int udc_decode_units(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, char* err, size_t err_len) {
  return udc_decode_units_ex(blob, blob_len, out, out_len, nullptr, err, err_len);
}

int udc_range_decode(const uint8_t* payload, size_t payload_len, uint64_t numel, uint32_t symbol_width, uint32_t* out,
                     char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (payload == nullptr && payload_len != 0) return udc::Status(udc::Code::kInvalidArgument, "payload is NULL");
    return udc::RangeDecode(payload, payload_len, numel, symbol_width, out);
  });
}

int udc_rans_decode(const uint8_t* payload, size_t payload_len, uint64_t numel, uint32_t symbol_width, uint32_t* out,
                    char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (payload == nullptr && payload_len != 0) return udc::Status(udc::Code::kInvalidArgument, "payload is NULL");
    return udc::RansDecode(payload, payload_len, numel, symbol_width, out);
  });
}

const char* udc_status_name(int status) { return udc::CodeName(status); }

const char* udc_version(void) { return UDC_VERSION_STRING " (format 1)"; }

}  // extern "C"
