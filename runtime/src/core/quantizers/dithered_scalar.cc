// Quantizer 1, dithered uniform scalar on the lattice Z (FORMAT.md 4.1).
//
//   symbol s_i (u32, planar) -> q = zigzag^-1(s_i) (i32)
//   d_i = Dither(seed, i)                         in [-0.5, 0.5)
//   w_i = (float32(q) - d_i) * step               binary32, no FMA (-ffp-contract=off)
//   FLOAT: w_i    FLOAT16: round-to-nearest-even binary16 of w_i
//   params: empty, or a codeword table (FORMAT.md 4.6): float32(q) is replaced by the
//   table's value for a symbol that is one of its keys
#include <cmath>
#include <cstring>
#include <string>

#include "core/dither.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/plan.h"
#include "core/quantizers.h"
#include "core/quantizers/codewords.h"
#include "core/quantizers/scalar_kernels.h"
#include "core/symbols.h"

namespace udc {
namespace {

// Element i of the dequantized tensor with a codeword table, in binary32: a = the table
// value of the symbol, or float32(q). Each operation rounds (the build sets -ffp-contract=off).
inline float DequantizeOne(uint32_t symbol, uint64_t seed, uint64_t i, float step, const CodewordTable& table) {
  const int64_t entry = table.Find(&symbol);
  const float a = entry >= 0 ? table.Value(static_cast<uint64_t>(entry), 0) : static_cast<float>(ZigzagDecode(symbol));
  const float t = a - Dither(seed, i);
  return t * step;
}

template <int W, bool kHalf>
void Run(const Header& h, const uint8_t* symbols, uint8_t* out, const CodewordTable& table, uint64_t begin,
         uint64_t end) {
  const uint64_t n = h.numel;
  const uint64_t seed = h.seed;
  const float step = h.step;
  if (table.size() == 0) {  // the common case: vector kernels (scalar_kernels.h)
    scalar_kernels::Run<W, kHalf, false>(symbols, n, seed, step, nullptr, begin, end, out);
    return;
  }
  for (uint64_t i = begin; i < end; ++i) {
    const uint32_t s = PlanarSymbol<W>(symbols, n, i);
    const float w = DequantizeOne(s, seed, i, step, table);
    if (kHalf) {
      const uint16_t hbits = FloatToHalfBits(w);
      std::memcpy(out + 2 * i, &hbits, 2);
    } else {
      std::memcpy(out + 4 * i, &w, 4);
    }
  }
}

template <bool kHalf>
void Dispatch(const Header& h, const uint8_t* symbols, uint8_t* out, const DecodeOptions& opt) {
  const CodewordTable table = h.params_len ? CodewordTable::View(h.params, 1) : CodewordTable();
  ParallelFor(h.numel, opt.max_threads, [&](uint64_t b, uint64_t e) {
    switch (h.symbol_width) {
      case 1: Run<1, kHalf>(h, symbols, out, table, b, e); break;
      case 2: Run<2, kHalf>(h, symbols, out, table, b, e); break;
      default: Run<4, kHalf>(h, symbols, out, table, b, e); break;
    }
  });
}

class DitheredScalar final : public Quantizer {
 public:
  Status Validate(const Header& h) const override {
    UDC_RETURN_IF_ERROR(CheckFloatDType(h, "the dithered scalar quantizer"));
    UDC_RETURN_IF_ERROR(CheckSymbolWidth(h));
    if (!std::isfinite(h.step) || !(h.step > 0.0f)) {
      return Status(Code::kBadHeader, "step is " + FloatString(h.step) +
                                          ", the dithered scalar quantizer needs a finite step > 0");
    }
    if (h.params_len != 0) {  // a codeword table
      CodewordTable table;
      return CodewordTable::Parse(h.params, h.params_len, 1, &table);
    }
    return Status::Ok();
  }

  void Dequantize(const Header& h, const uint8_t* symbols, uint8_t* out, const DecodeOptions& opt) const override {
    if (h.dtype == static_cast<uint8_t>(DType::kFloat16)) {
      Dispatch<true>(h, symbols, out, opt);
    } else {
      Dispatch<false>(h, symbols, out, opt);
    }
  }

  void Plan(const Header& h, ReconPlan* plan) const override {
    *plan = BasePlan(h, h.numel, h.numel);
    if (h.params_len) {  // a codeword table of 1-dimensional entries
      plan->table_at = 4;
      plan->table_count = LoadU32(h.params);
    }
  }
};

}  // namespace

const Quantizer& DitheredScalarQuantizer() {
  static const DitheredScalar kDitheredScalar;
  return kDitheredScalar;
}

}  // namespace udc
