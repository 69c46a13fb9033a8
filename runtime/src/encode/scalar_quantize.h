// scalar_quantize.h - the encoder side of quantizer 1 (dithered uniform scalar, FORMAT.md
// 4.1) on float32 weights: indices, zigzag codes, the error of the exact decode, and symbol
// counts, each in one pass. For the Python package (onnx_udc.quantizers.scalar, through
// udc_scalar_codes / udc_scalar_error / udc_symbol_histogram); part of udc_encode, so the
// decoding core does not link it.
//
// Every value is the one the numpy reference computes (onnx_udc/quantizers/scalar.py):
//   q_i = rint(double(w_i) / double(step) + double(d_i))   binary64, ties to even
//   code_i = zigzag(q_i)                                   |q_i| <= 2^31 - 1, else overflow
//   w_hat_i = (float(q_i) - d_i) * step                    binary32 (the decoder's formula)
// with d_i = Dither(seed, i) (core/dither.h). Elements [start, start + count) of a tensor
// can be done on their own (the dither is counter-based): any split gives the same values.
#ifndef UDC_ENCODE_SCALAR_QUANTIZE_H_
#define UDC_ENCODE_SCALAR_QUANTIZE_H_

#include <cstdint>

#include "core/status.h"

namespace udc {

struct ScalarCodesResult {
  uint32_t max_code = 0;  // the largest code of the elements done
  bool overflow = false;  // an index is not finite or |q| > 2^31 - 1 (nothing more is done)
  bool too_wide = false;  // a code does not fit out_width bytes (out is then not usable)
};

// w[count] (elements start .. start + count - 1 of a tensor with dither seed `seed`) ->
// out[count] codes of out_width (1, 2 or 4) bytes, little-endian, and the result above.
// step must be a finite float32 > 0 (kInvalidArgument otherwise).
Status ScalarCodes(const float* w, uint64_t count, uint64_t start, float step, uint64_t seed, unsigned out_width,
                   void* out, ScalarCodesResult* result);

// sums[0] += sum of w_i^2, sums[1] += sum of (w_hat_i - w_i)^2 (binary64, each term exact
// as the reference's; the order of the sum is this function's) for codes[count] of `width`
// bytes: the signal and noise energies of sqnr_db on a float32 tensor.
Status ScalarError(const float* w, const void* codes, unsigned width, uint64_t count, uint64_t start, float step,
                   uint64_t seed, double sums[2]);

// counts[v] += number of symbols equal to v, for symbols[count] of `width` bytes; false
// (counts partly updated) when a symbol is >= counts_len.
Status SymbolHistogram(const void* symbols, unsigned width, uint64_t count, uint64_t* counts, uint64_t counts_len,
                       bool* fits);

}  // namespace udc

#endif  // UDC_ENCODE_SCALAR_QUANTIZE_H_
