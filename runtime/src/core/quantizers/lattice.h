// lattice.h - the dithered lattice quantizers (FORMAT.md 4.2-4.6): what A2, D4 and E8 share.
//
//   params: axis order (ndim bytes, a permutation) + codeword table (codewords.h)
//   stream position i = v * n + j: coordinate j of vector v; the N mod n last positions
//   are the tail, decoded with the scalar formula of 4.1.
//
//   vector v: symbols s[0..n) --zigzag^-1--> S (i32) --G::FromSigned--> P (i64)
//             k_j = SplitMix64At(seed, v * n + j) >> 40,  z = k / unit,  unit = 2^24 / G::kBox
//             u_j = float32(k_j - unit * Q(k)_j) * 2^-log2(unit)       Q: G::Nearest, integers only
//             a_j = float32(P_j), or the table's value when s is a key
//             w_j = (a_j - u_j) * c_j,   c_j = step * G::kScale[j]     binary32, no FMA
//   output:   stream position i goes to the element whose index in the transposed tensor
//             (axes in the stored order) is i.
//
// A geometry G (lattice_math.h) provides kN, kBox, kScale[kN] and
//   static void Nearest(const int64_t* y, int64_t unit, int64_t* p);  // exact, integers
//   static void FromSigned(const int64_t* s, int64_t* p);             // any int32 input
#ifndef UDC_CORE_QUANTIZERS_LATTICE_H_
#define UDC_CORE_QUANTIZERS_LATTICE_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/dither.h"
#include "core/format.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/plan.h"
#include "core/quantizers.h"
#include "core/quantizers/codewords.h"
#include "core/quantizers/lattice_math.h"
#include "core/stream_order.h"
#include "core/symbols.h"

namespace udc {
namespace lattice {

template <bool kHalf>
inline void Store(uint8_t* out, uint64_t offset, float w) {
  if (kHalf) {
    const uint16_t bits = FloatToHalfBits(w);
    std::memcpy(out + 2 * offset, &bits, 2);
  } else {
    std::memcpy(out + 4 * offset, &w, 4);
  }
}

template <class G, int W, bool kHalf, bool kIdentity>
void Run(const Header& h, const uint8_t* symbols, uint8_t* out, const StreamOrder& order,
         const CodewordTable& table, uint64_t vbegin, uint64_t vend) {
  constexpr int N = G::kN;
  const uint64_t n = h.numel;
  const uint64_t nvec = n / N;
  float c[N];
  for (int j = 0; j < N; ++j) c[j] = h.step * G::kScale[j];
  StreamOrder::Cursor cursor(order, vbegin * N);
  for (uint64_t v = vbegin; v < vend && v < nvec; ++v) {
    uint32_t key[N];
    int64_t s[N], p[N];
    for (int j = 0; j < N; ++j) {
      key[j] = PlanarSymbol<W>(symbols, n, v * N + j);
      s[j] = ZigzagDecode(key[j]);
    }
    G::FromSigned(s, p);
    float a[N], u[N];
    const int64_t entry = table.size() ? table.Find(key) : -1;
    for (int j = 0; j < N; ++j) {
      a[j] = entry >= 0 ? table.Value(static_cast<uint64_t>(entry), j) : static_cast<float>(p[j]);
    }
    VectorDither<G>(h.seed, v, u);
    for (int j = 0; j < N; ++j) {
      const float t = a[j] - u[j];
      const float w = t * c[j];
      Store<kHalf>(out, kIdentity ? v * N + j : cursor.Next(), w);
    }
  }
  if (vend > nvec) {  // the tail: scalar formula of FORMAT.md 4.1 at its stream positions
    for (uint64_t i = nvec * N; i < n; ++i) {
      const float a = static_cast<float>(ZigzagDecode(PlanarSymbol<W>(symbols, n, i)));
      const float t = a - Dither(h.seed, i);
      const float w = t * h.step;
      Store<kHalf>(out, kIdentity ? i : cursor.Next(), w);
    }
  }
}

template <class G, bool kHalf, bool kIdentity>
void Dispatch(const Header& h, const uint8_t* symbols, uint8_t* out, const StreamOrder& order,
              const CodewordTable& table, const DecodeOptions& opt) {
  // Units are the vectors plus the tail; ParallelFor splits their elements (so its size
  // threshold counts elements), and each chunk takes the units that start inside it.
  constexpr uint64_t N = G::kN;
  const uint64_t units = h.numel / N + (h.numel % N ? 1 : 0);
  ParallelFor(units * N, opt.max_threads, [&](uint64_t eb, uint64_t ee) {
    const uint64_t b = (eb + N - 1) / N, e = (ee + N - 1) / N;
    switch (h.symbol_width) {
      case 1: Run<G, 1, kHalf, kIdentity>(h, symbols, out, order, table, b, e); break;
      case 2: Run<G, 2, kHalf, kIdentity>(h, symbols, out, order, table, b, e); break;
      default: Run<G, 4, kHalf, kIdentity>(h, symbols, out, order, table, b, e); break;
    }
  });
}

template <class G>
class LatticeQuantizer final : public Quantizer {
 public:
  Status Validate(const Header& h) const override {
    const std::string who = std::string("the ") + QuantizerName(h.quantizer) + " quantizer";
    UDC_RETURN_IF_ERROR(CheckFloatDType(h, who));
    UDC_RETURN_IF_ERROR(CheckSymbolWidth(h));
    if (!std::isfinite(h.step) || !(h.step > 0.0f)) {
      return Status(Code::kBadHeader, "step is " + FloatString(h.step) + ", " + who + " needs a finite step > 0");
    }
    if (h.params_len < h.ndim) {
      return Status(Code::kBadHeader, "params_len is " + std::to_string(h.params_len) + ", the axis order needs " +
                                          std::to_string(h.ndim) + " bytes");
    }
    bool seen[kMaxNdim] = {};
    for (unsigned d = 0; d < h.ndim; ++d) {
      const uint8_t a = h.params[d];
      if (a >= h.ndim || seen[a]) {
        return Status(Code::kBadHeader, "axis order byte " + std::to_string(d) + " is " + std::to_string(a) +
                                            ": the order is not a permutation of the " + std::to_string(h.ndim) +
                                            " axes");
      }
      seen[a] = true;
    }
    CodewordTable table;
    return CodewordTable::Parse(h.params + h.ndim, h.params_len - h.ndim, G::kN, &table);
  }

  void Dequantize(const Header& h, const uint8_t* symbols, uint8_t* out, const DecodeOptions& opt) const override {
    const StreamOrder order(h, h.params);
    const CodewordTable table = CodewordTable::View(h.params + h.ndim, G::kN);
    const bool half = h.dtype == static_cast<uint8_t>(DType::kFloat16);
    if (order.identity()) {
      if (half) Dispatch<G, true, true>(h, symbols, out, order, table, opt);
      else Dispatch<G, false, true>(h, symbols, out, order, table, opt);
    } else {
      if (half) Dispatch<G, true, false>(h, symbols, out, order, table, opt);
      else Dispatch<G, false, false>(h, symbols, out, order, table, opt);
    }
  }

  void Plan(const Header& h, ReconPlan* plan) const override {
    const uint64_t nvec = h.numel / G::kN;
    *plan = BasePlan(h, h.numel, nvec + (h.numel - nvec * G::kN));
    SetStreamOrder(h, h.params, plan);
    for (int j = 0; j < G::kN; ++j) plan->scale[j] = h.step * G::kScale[j];
    plan->table_at = uint64_t{h.ndim} + 4;
    plan->table_count = LoadU32(h.params + h.ndim);
  }
};

// The factory named in quantizers/list.h for geometry G (one strategy object per G).
template <class G>
const Quantizer& Strategy() {
  static const LatticeQuantizer<G> kStrategy;
  return kStrategy;
}

}  // namespace lattice
}  // namespace udc

#endif  // UDC_CORE_QUANTIZERS_LATTICE_H_
