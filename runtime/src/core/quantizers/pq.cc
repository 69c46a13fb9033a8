// Quantizer 5, product quantization (FORMAT.md 4.7): one centroid index per block.
//
//   params: order[ndim] u8 | d u16 | k u32 | tail u8 (0: pad) | centroids f16 [k][d]
//   symbols: B = ceil(numel / d) indices (planar, width 1 for k <= 256, else 2), each < k
//   stream position p = b*d + j (p < numel) <- centroids[idx[b]][j]
//   element: the transposed tensor (numpy.transpose(w, order)) read row-major at p,
//            written back at its row-major position in w. FLOAT: float32 of the half
//            (exact); FLOAT16: the half's bits.
#include <cstring>
#include <string>

#include "core/half.h"
#include "core/parallel.h"
#include "core/plan.h"
#include "core/stream_order.h"
#include "core/quantizers.h"
#include "core/symbols.h"

namespace udc {
namespace {

constexpr uint32_t kMaxK = 65536;
constexpr size_t kFixed = 7;  // d u16, k u32, tail u8

struct Params {
  uint8_t order[kMaxNdim] = {};
  uint32_t d = 0;
  uint32_t k = 0;
  const uint8_t* table = nullptr;  // k * d little-endian halves
};

// Validates h.params against h.ndim; the only place params are read.
Status ParseParams(const Header& h, Params* p) {
  const uint64_t len = h.params_len;
  if (len < h.ndim + kFixed) {
    return Status(Code::kBadHeader, "params_len is " + std::to_string(len) + ", pq needs at least " +
                                        std::to_string(h.ndim + kFixed));
  }
  bool seen[kMaxNdim] = {};
  for (unsigned a = 0; a < h.ndim; ++a) {
    const uint8_t v = h.params[a];
    if (v >= h.ndim || seen[v]) {
      return Status(Code::kBadHeader, "pq axis order is not a permutation of the " + std::to_string(h.ndim) + " axes");
    }
    seen[v] = true;
    p->order[a] = v;
  }
  const uint8_t* f = h.params + h.ndim;
  p->d = LoadU16(f);
  p->k = LoadU32(f + 2);
  const uint8_t tail = f[6];
  if (p->d == 0) return Status(Code::kBadHeader, "pq block size d is 0");
  if (p->k == 0 || p->k > kMaxK) {
    return Status(Code::kBadHeader, "pq codebook size k is " + std::to_string(p->k) + ", must be in [1, 65536]");
  }
  if (tail != 0) return Status(Code::kBadHeader, "pq tail rule " + std::to_string(tail) + " is unknown (0: pad)");
  const uint64_t want = uint64_t{h.ndim} + kFixed + uint64_t{2} * p->k * p->d;  // < 2^34: no overflow
  if (len != want) {
    return Status(Code::kBadHeader, "params_len is " + std::to_string(len) + ", pq with d=" + std::to_string(p->d) +
                                        " k=" + std::to_string(p->k) + " needs " + std::to_string(want));
  }
  p->table = f + kFixed;
  return Status::Ok();
}

template <int W, bool kHalf>
void Run(const Header& h, const Params& p, uint64_t blocks, const uint8_t* symbols, uint8_t* out, uint64_t b0,
         uint64_t b1) {
  const uint64_t d = p.d;
  uint64_t pos = b0 * d;
  const StreamOrder order(h, p.order);
  StreamOrder::Cursor cur(order, pos);
  for (uint64_t b = b0; b < b1; ++b) {
    const uint8_t* c = p.table + 2 * (uint64_t{PlanarSymbol<W>(symbols, blocks, b)} * d);
    for (uint64_t j = 0; j < d && pos < h.numel; ++j, ++pos) {
      const uint16_t half = LoadU16(c + 2 * j);
      const uint64_t at = cur.Next();
      if (kHalf) {
        std::memcpy(out + 2 * at, &half, 2);
      } else {
        const float f = HalfBitsToFloat(half);
        std::memcpy(out + 4 * at, &f, 4);
      }
    }
  }
}

class ProductQuantizer final : public Quantizer {
 public:
  Status Validate(const Header& h) const override {
    UDC_RETURN_IF_ERROR(CheckFloatDType(h, "the pq quantizer"));
    if (!(h.step == 0.0f) || h.seed != 0) {
      return Status(Code::kBadHeader, "pq needs step 0.0 and seed 0");
    }
    Params p;
    UDC_RETURN_IF_ERROR(ParseParams(h, &p));
    const unsigned width = p.k <= 256 ? 1 : 2;
    if (h.symbol_width != width) {
      return Status(Code::kBadHeader, "symbol_width is " + std::to_string(h.symbol_width) + ", pq with k=" +
                                          std::to_string(p.k) + " needs " + std::to_string(width));
    }
    return Status::Ok();
  }

  uint64_t SymbolCount(const Header& h) const override {
    const uint64_t d = LoadU16(h.params + h.ndim);  // valid after Validate
    return (h.numel + d - 1) / d;  // numel <= 2^34: no overflow
  }

  Status CheckSymbols(const Header& h, const uint8_t* symbols) const override {
    Params p;
    UDC_RETURN_IF_ERROR(ParseParams(h, &p));
    const uint64_t blocks = SymbolCount(h);
    for (uint64_t b = 0; b < blocks; ++b) {
      const uint32_t s = h.symbol_width == 1 ? PlanarSymbol<1>(symbols, blocks, b) : PlanarSymbol<2>(symbols, blocks, b);
      if (s >= p.k) {
        return Status(Code::kCorruptPayload, "pq index " + std::to_string(s) + " of block " + std::to_string(b) +
                                                 " is not below k=" + std::to_string(p.k));
      }
    }
    return Status::Ok();
  }

  void Dequantize(const Header& h, const uint8_t* symbols, uint8_t* out, const DecodeOptions& opt) const override {
    Params p;
    if (!ParseParams(h, &p).ok()) return;  // unreachable: Validate succeeded
    const uint64_t blocks = SymbolCount(h);
    const bool half = h.dtype == static_cast<uint8_t>(DType::kFloat16);
    ParallelFor(blocks, opt.max_threads, [&](uint64_t b, uint64_t e) {
      if (h.symbol_width == 1) {
        half ? Run<1, true>(h, p, blocks, symbols, out, b, e) : Run<1, false>(h, p, blocks, symbols, out, b, e);
      } else {
        half ? Run<2, true>(h, p, blocks, symbols, out, b, e) : Run<2, false>(h, p, blocks, symbols, out, b, e);
      }
    });
  }

  void Plan(const Header& h, ReconPlan* plan) const override {
    Params p;
    (void)ParseParams(h, &p);  // succeeded in Validate
    *plan = BasePlan(h, SymbolCount(h), h.numel);
    SetStreamOrder(h, p.order, plan);
    plan->pq_d = p.d;
    plan->pq_k = p.k;
    plan->pq_at = static_cast<uint64_t>(p.table - h.params);
  }
};

}  // namespace

const Quantizer& PQQuantizer() {
  static const ProductQuantizer kPQ;
  return kPQ;
}

}  // namespace udc
