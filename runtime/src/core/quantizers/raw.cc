// Quantizer 0, raw (FORMAT.md 4.0): the symbols are the elements' own bit patterns.
//
//   planar bytes [k * numel + i]  --transpose-->  element i, byte k (little-endian)
#include <cstring>
#include <string>

#include "core/parallel.h"
#include "core/plan.h"
#include "core/quantizers.h"

namespace udc {
namespace {

template <int W>
void Interleave(const uint8_t* symbols, uint64_t numel, uint8_t* out, uint64_t begin, uint64_t end) {
  for (uint64_t i = begin; i < end; ++i) {
    for (int k = 0; k < W; ++k) out[i * W + k] = symbols[k * numel + i];
  }
}

class Raw final : public Quantizer {
 public:
  Status Validate(const Header& h) const override {
    const size_t size = DTypeSize(h.dtype);
    if (size == 0) {
      return Status(Code::kBadHeader, "dtype " + std::to_string(h.dtype) +
                                          " is not one of FLOAT(1), UINT8(2), INT8(3), INT32(6), FLOAT16(10)");
    }
    if (h.symbol_width != size) {
      return Status(Code::kBadHeader, "symbol_width is " + std::to_string(h.symbol_width) +
                                          ", the raw quantizer needs the element size " + std::to_string(size) +
                                          " of dtype " + DTypeName(h.dtype));
    }
    if (!(h.step == 0.0f)) {
      return Status(Code::kBadHeader, "step is " + FloatString(h.step) + ", the raw quantizer needs 0.0");
    }
    if (h.seed != 0) {
      return Status(Code::kBadHeader, "seed is " + std::to_string(h.seed) + ", the raw quantizer needs 0");
    }
    if (h.params_len != 0) {
      return Status(Code::kBadHeader,
                    "params_len is " + std::to_string(h.params_len) + ", the raw quantizer needs 0");
    }
    return Status::Ok();
  }

  void Dequantize(const Header& h, const uint8_t* symbols, uint8_t* out, const DecodeOptions& opt) const override {
    const uint64_t n = h.numel;
    switch (h.symbol_width) {
      case 1:
        if (n) std::memcpy(out, symbols, n);
        return;
      case 2:
        ParallelFor(n, opt.max_threads, [&](uint64_t b, uint64_t e) { Interleave<2>(symbols, n, out, b, e); });
        return;
      default:
        ParallelFor(n, opt.max_threads, [&](uint64_t b, uint64_t e) { Interleave<4>(symbols, n, out, b, e); });
        return;
    }
  }

  void Plan(const Header& h, ReconPlan* plan) const override { *plan = BasePlan(h, h.numel, h.numel); }
};

}  // namespace

const Quantizer& RawQuantizer() {
  static const Raw kRaw;
  return kRaw;
}

}  // namespace udc
