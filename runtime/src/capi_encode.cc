// capi_encode.cc - the encoder entry points of onnx_udc.h (coders 2 and 3, range and rans;
// the float32 kernels of quantizer 1), for the Python package and tests. Built as its own object library on udc_encode: libonnx_udc.so and
// udc_core_tests link it; the decoding core, the fuzzer and the CUDA decoder do not.
#include <cstring>
#include <string>
#include <vector>

#include "capi_guard.h"
#include "encode/range_encoder.h"
#include "encode/rans_encoder.h"
#include "encode/scalar_quantize.h"
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

// Coder 3 (FORMAT.md 5.3) on symbols of element_bytes (1, 2, 4) bytes each; a parameter of
// 0 is chosen by the encoder. Declared here, not in onnx_udc.h (the Python package's call).
UDC_API int udc_rans_encode_elements(const void* symbols, uint32_t element_bytes, uint64_t numel,
                                     uint32_t symbol_width, uint32_t lanes, uint32_t prob_bits, uint32_t contexts,
                                     uint32_t shift, uint8_t* out, size_t out_cap, size_t* out_len, char* err,
                                     size_t err_len);

int udc_rans_encode_elements(const void* symbols, uint32_t element_bytes, uint64_t numel, uint32_t symbol_width,
                             uint32_t lanes, uint32_t prob_bits, uint32_t contexts, uint32_t shift, uint8_t* out,
                             size_t out_cap, size_t* out_len, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (out_len == nullptr) return udc::Status(udc::Code::kInvalidArgument, "out_len is NULL");
    *out_len = 0;
    udc::RansParams params;
    params.lanes = lanes;
    params.prob_bits = prob_bits;
    params.contexts = contexts;
    params.shift = shift;
    std::vector<uint8_t> payload;
    UDC_RETURN_IF_ERROR(udc::RansEncodeElements(symbols, element_bytes, numel, symbol_width, params, &payload));
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

// Coder 3 (FORMAT.md 5.3); a parameter of 0 is chosen by the encoder.
int udc_rans_encode(const uint32_t* symbols, uint64_t numel, uint32_t symbol_width, uint32_t lanes,
                    uint32_t prob_bits, uint32_t contexts, uint32_t shift, uint8_t* out, size_t out_cap,
                    size_t* out_len, char* err, size_t err_len) {
  return udc_rans_encode_elements(symbols, sizeof(uint32_t), numel, symbol_width, lanes, prob_bits, contexts, shift,
                                  out, out_cap, out_len, err, err_len);
}

// ---- quantizer 1 on float32 weights (encode/scalar_quantize.h) ---------------------------
// Declared here, not in onnx_udc.h: the Python package's encoder kernels (onnx_udc.native),
// not a deployment API.
UDC_API int udc_scalar_codes(const float* weights, uint64_t count, uint64_t start, float step, uint64_t seed,
                             uint32_t out_width, void* out, uint32_t* max_code, uint32_t* flags, char* err,
                             size_t err_len);
UDC_API int udc_scalar_error(const float* weights, const void* codes, uint32_t width, uint64_t count, uint64_t start,
                             float step, uint64_t seed, double* sums, char* err, size_t err_len);
UDC_API int udc_symbol_histogram(const void* symbols, uint32_t width, uint64_t count, uint64_t* counts,
                                 uint64_t counts_len, uint32_t* fits, char* err, size_t err_len);

// Codes of elements [start, start + count) into out[count] (out_width bytes each); *flags:
// bit 0 an index overflows 32 bits or is not finite, bit 1 a code does not fit out_width.
int udc_scalar_codes(const float* weights, uint64_t count, uint64_t start, float step, uint64_t seed,
                     uint32_t out_width, void* out, uint32_t* max_code, uint32_t* flags, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (max_code == nullptr || flags == nullptr) return udc::Status(udc::Code::kInvalidArgument, "max_code or flags is NULL");
    udc::ScalarCodesResult result;
    UDC_RETURN_IF_ERROR(udc::ScalarCodes(weights, count, start, step, seed, out_width, out, &result));
    *max_code = result.max_code;
    *flags = (result.overflow ? 1u : 0u) | (result.too_wide ? 2u : 0u);
    return udc::Status::Ok();
  });
}

// sums[0] += signal energy, sums[1] += noise energy of the exact decode of codes[count].
int udc_scalar_error(const float* weights, const void* codes, uint32_t width, uint64_t count, uint64_t start,
                     float step, uint64_t seed, double* sums, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    return udc::ScalarError(weights, codes, width, count, start, step, seed, sums);
  });
}

// counts[v] += occurrences of v in symbols[count]; *fits = 0 when a symbol is >= counts_len.
int udc_symbol_histogram(const void* symbols, uint32_t width, uint64_t count, uint64_t* counts, uint64_t counts_len,
                         uint32_t* fits, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (fits == nullptr) return udc::Status(udc::Code::kInvalidArgument, "fits is NULL");
    bool ok = false;
    UDC_RETURN_IF_ERROR(udc::SymbolHistogram(symbols, width, count, counts, counts_len, &ok));
    *fits = ok ? 1u : 0u;
    return udc::Status::Ok();
  });
}

}  // extern "C"
