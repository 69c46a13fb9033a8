// The encoder kernels of quantizer 1 on float32 weights (scalar_quantize.h).
//
// Compiled with -ffp-contract=off (UdcCompileOptions): each binary64 / binary32 operation
// rounds on its own, as numpy's do. rint is the add-and-subtract of 1.5 * 2^52, exact round
// to nearest, ties to even, for |x| < 2^51 (the default rounding mode); larger and
// non-finite x are overflow anyway.
#include "encode/scalar_quantize.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/dither.h"

namespace udc {
namespace {

constexpr double kRoundMagic = 6755399441055744.0;  // 1.5 * 2^52
// |rint(x)| <= 2^31 - 1  <=>  |x| < 2^31 - 0.5 (2^31 - 0.5 itself rounds to the even 2^31)
constexpr double kIndexBound = 2147483647.5;
constexpr uint64_t kBlock = 1024;  // elements between overflow checks

Status Invalid(const std::string& what) { return Status(Code::kInvalidArgument, "scalar quantizer: " + what); }

bool WidthOk(unsigned width) { return width == 1 || width == 2 || width == 4; }

template <typename T>
bool Codes(const float* w, uint64_t count, uint64_t start, float step, uint64_t seed, T* out, uint32_t* max_code) {
  const double s = static_cast<double>(step);
  uint32_t top = 0;
  for (uint64_t b = 0; b < count; b += kBlock) {
    const uint64_t end = b + kBlock < count ? b + kBlock : count;
    bool bad = false;
    for (uint64_t i = b; i < end; ++i) {
      const double x = static_cast<double>(w[i]) / s + static_cast<double>(Dither(seed, start + i));
      bad |= !(std::fabs(x) < kIndexBound);  // NaN too
      const double r = (x + kRoundMagic) - kRoundMagic;
      const int32_t q = bad ? 0 : static_cast<int32_t>(r);
      const uint32_t z = ZigzagEncode(q);
      top = z > top ? z : top;
      out[i] = static_cast<T>(z);
    }
    if (bad) return false;
  }
  *max_code = top;
  return true;
}

template <typename T>
void Error(const float* w, const T* codes, uint64_t count, uint64_t start, float step, uint64_t seed, double sums[2]) {
  double signal = 0.0, noise = 0.0;
  for (uint64_t i = 0; i < count; ++i) {
    const float a = static_cast<float>(ZigzagDecode(codes[i]));
    const float w_hat = (a - Dither(seed, start + i)) * step;
    const double ref = static_cast<double>(w[i]);
    const double err = static_cast<double>(w_hat) - ref;
    signal += ref * ref;
    noise += err * err;
  }
  sums[0] += signal;
  sums[1] += noise;
}

template <typename T>
bool Histogram(const T* symbols, uint64_t count, uint64_t* counts, uint64_t counts_len) {
  uint64_t i = 0;
  if (sizeof(T) == 1 && counts_len >= 256) {
    // four tables in turn: a run of equal symbols does not wait on one counter's last store
    std::vector<uint64_t> part(4 * 256, 0);
    for (; i + 4 <= count; i += 4) {
      ++part[symbols[i]];
      ++part[256 + symbols[i + 1]];
      ++part[512 + symbols[i + 2]];
      ++part[768 + symbols[i + 3]];
    }
    for (unsigned v = 0; v < 256; ++v) counts[v] += part[v] + part[256 + v] + part[512 + v] + part[768 + v];
  }
  for (; i < count; ++i) {
    const uint64_t v = symbols[i];
    if (v >= counts_len) return false;
    ++counts[v];
  }
  return true;
}

}  // namespace

Status ScalarCodes(const float* w, uint64_t count, uint64_t start, float step, uint64_t seed, unsigned out_width,
                   void* out, ScalarCodesResult* result) {
  if (result == nullptr) return Invalid("result is NULL");
  *result = ScalarCodesResult();
  if (!WidthOk(out_width)) return Invalid("code width must be 1, 2 or 4");
  if (!(std::isfinite(step) && step > 0.0f)) return Invalid("step must be a finite float32 > 0");
  if (count != 0 && (w == nullptr || out == nullptr)) return Invalid("weights or codes is NULL");
  uint32_t top = 0;
  bool ok = false;
  switch (out_width) {
    case 1: ok = Codes(w, count, start, step, seed, static_cast<uint8_t*>(out), &top); break;
    case 2: ok = Codes(w, count, start, step, seed, static_cast<uint16_t*>(out), &top); break;
    default: ok = Codes(w, count, start, step, seed, static_cast<uint32_t*>(out), &top); break;
  }
  result->overflow = !ok;
  result->max_code = top;
  result->too_wide = ok && out_width < 4 && top >= (uint32_t{1} << (8 * out_width));
  return Status::Ok();
}

Status ScalarError(const float* w, const void* codes, unsigned width, uint64_t count, uint64_t start, float step,
                   uint64_t seed, double sums[2]) {
  if (!WidthOk(width)) return Invalid("code width must be 1, 2 or 4");
  if (sums == nullptr) return Invalid("sums is NULL");
  if (count != 0 && (w == nullptr || codes == nullptr)) return Invalid("weights or codes is NULL");
  switch (width) {
    case 1: Error(w, static_cast<const uint8_t*>(codes), count, start, step, seed, sums); break;
    case 2: Error(w, static_cast<const uint16_t*>(codes), count, start, step, seed, sums); break;
    default: Error(w, static_cast<const uint32_t*>(codes), count, start, step, seed, sums); break;
  }
  return Status::Ok();
}

Status SymbolHistogram(const void* symbols, unsigned width, uint64_t count, uint64_t* counts, uint64_t counts_len,
                       bool* fits) {
  if (!WidthOk(width)) return Invalid("symbol width must be 1, 2 or 4");
  if (fits == nullptr) return Invalid("fits is NULL");
  if (count != 0 && (symbols == nullptr || (counts == nullptr && counts_len != 0))) {
    return Invalid("symbols or counts is NULL");
  }
  switch (width) {
    case 1: *fits = Histogram(static_cast<const uint8_t*>(symbols), count, counts, counts_len); break;
    case 2: *fits = Histogram(static_cast<const uint16_t*>(symbols), count, counts, counts_len); break;
    default: *fits = Histogram(static_cast<const uint32_t*>(symbols), count, counts, counts_len); break;
  }
  return Status::Ok();
}

}  // namespace udc
