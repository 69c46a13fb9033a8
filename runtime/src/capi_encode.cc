// capi_encode.cc - the encoder entry points of onnx_udc.h (coder 2, range), for the Python
// package and tests. Built as its own object library on udc_encode: libonnx_udc.so and
// udc_core_tests link it; the decoding core, the fuzzer and the CUDA decoder do not.
#include <cstring>
#include <string>
#include <vector>

#include "capi_guard.h"
#include "encode/range_encoder.h"
#include "encode/rans_encoder.h"
#include "onnx_udc.h"

using udc::capi::Guard;

extern "C" {

// Coder 2 with an extended-header variant (FORMAT.md 5.2). Writes the payload into
// out[0, out_cap), or returns kBufferSize with the needed length in *out_len.
int udc_range_encode_variant(const uint32_t* symbols, uint64_t numel, uint32_t symbol_width, uint32_t period,
                             uint32_t variant, uint8_t* out, size_t out_cap, size_t* out_len, char* err,
                             size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (out_len == nullptr) return udc::Status(udc::Code::kInvalidArgument, "out_len is NULL");
    *out_len = 0;
    std::vector<uint8_t> payload;
    UDC_RETURN_IF_ERROR(udc::RangeEncodeVariant(symbols, numel, symbol_width, period, variant, &payload));
    *out_len = payload.size();
    if (payload.size() > out_cap) {
      return udc::Status(udc::Code::kBufferSize, "range payload needs " + std::to_string(payload.size()) +
                                                     " bytes, the buffer has " + std::to_string(out_cap));
    }
    if (out == nullptr) return udc::Status(udc::Code::kInvalidArgument, "out is NULL");
    std::memcpy(out, payload.data(), payload.size());
    return udc::Status::Ok();
  });
}

// The short header: variant 1 with the period clamped to 255 gives exactly these bytes
// (RangeEncodeVariant's contract); period 0 stays an error there.
int udc_range_encode(const uint32_t* symbols, uint64_t numel, uint32_t symbol_width, uint32_t period, uint8_t* out,
                     size_t out_cap, size_t* out_len, char* err, size_t err_len) {
  constexpr uint32_t kMaxShortPeriod = 255;
  return udc_range_encode_variant(symbols, numel, symbol_width, period > kMaxShortPeriod ? kMaxShortPeriod : period,
                                  1, out, out_cap, out_len, err, err_len);
}

// Coder 3 (FORMAT.md 5.3); a parameter of 0 is chosen by the encoder.
int udc_rans_encode(const uint32_t* symbols, uint64_t numel, uint32_t symbol_width, uint32_t lanes,
                    uint32_t prob_bits, uint32_t contexts, uint32_t shift, uint8_t* out, size_t out_cap,
                    size_t* out_len, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (out_len == nullptr) return udc::Status(udc::Code::kInvalidArgument, "out_len is NULL");
    *out_len = 0;
    udc::RansParams params;
    params.lanes = lanes;
    params.prob_bits = prob_bits;
    params.contexts = contexts;
    params.shift = shift;
    std::vector<uint8_t> payload;
    UDC_RETURN_IF_ERROR(udc::RansEncode(symbols, numel, symbol_width, params, &payload));
    *out_len = payload.size();
    if (payload.size() > out_cap) {
      return udc::Status(udc::Code::kBufferSize, "rans payload needs " + std::to_string(payload.size()) +
                                                     " bytes, the buffer has " + std::to_string(out_cap));
    }
    if (out == nullptr) return udc::Status(udc::Code::kInvalidArgument, "out is NULL");
    std::memcpy(out, payload.data(), payload.size());
    return udc::Status::Ok();
  });
}

}  // extern "C"
