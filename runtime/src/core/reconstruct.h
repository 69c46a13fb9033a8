// reconstruct.h - dequantization as independent units of work, for devices (the CUDA
// kernels) and for the host emulation that tests them against the CPU decoder.
//
//   Header --Quantizer::Plan--> ReconPlan (plain data, copied to the device by value)
//   unit u in [0, plan.units):  ReconstructUnit(plan, symbols, params, out, u)
//     raw      one element:   out bytes of element i <- planar symbol bytes
//     scalar   one element:   w_i = (a_i - Dither(seed, i)) * step                (4.1, 4.6)
//     a2/d4/e8 one vector v:  w_j = (a_j - u_j) * c_j, then the scalar tail       (4.2-4.6)
//     pq       one element:   p = b*d + j <- centroids[idx[b]][j]                 (4.7)
//     scalar_channel one element: w_i = (a_i - Dither(seed, i)) * step_c,
//                             c = (i / chan_inner) mod chan_count               (4.8)
//   symbols: the coder's planar symbol bytes; params: the blob's params bytes; out: numel
//   elements of the blob's dtype. Every unit writes its own elements only, so any order,
//   any thread count and any device give the same bytes.
//
// The formulas are the CPU quantizers' own (dither.h, half.h, lattice_math.h: one body,
// UDC_HD); only the walk differs: the output offset of a stream position is computed from
// the position here, where the CPU decoder steps a cursor.
#ifndef UDC_CORE_RECONSTRUCT_H_
#define UDC_CORE_RECONSTRUCT_H_

#include <cstdint>

#include "core/dither.h"
#include "core/half.h"
#include "core/hd.h"
#include "core/quantizers/lattice_math.h"
#include "core/quantizers/list.h"
#include "core/symbols.h"

namespace udc {

// The kinds of work: one per line of quantizers/list.h, numbered as the quantizer ids of
// FORMAT.md section 4 (Recon::k<Kind> = id).
#define UDC_RECON_KIND(id, Kind, name, factory, Unit) k##Kind = id,
enum class Recon : uint8_t { UDC_QUANTIZERS(UDC_RECON_KIND) };
#undef UDC_RECON_KIND

struct ReconPlan {
  Recon kind = Recon::kRaw;
  uint8_t width = 1;     // symbol width in bytes (raw: the element size)
  uint8_t half = 0;      // 1: the output is binary16 (scalar, lattices, pq)
  uint8_t ndim = 0;
  uint8_t identity = 1;  // 1: stream position i is element i
  uint64_t numel = 0;
  uint64_t nsym = 0;     // symbols in the payload (numel, or the pq blocks)
  uint64_t units = 0;    // work items: elements, or lattice vectors + tail elements
  uint64_t seed = 0;
  float step = 0.0f;
  float scale[8] = {};   // lattices: c_j = step * kScale[j]
  uint64_t tshape[8] = {};   // the transposed tensor (axes in the stored order)
  uint64_t tstride[8] = {};  // and each of its axes' stride in the output
  uint64_t table_at = 0;     // codeword table: offset of its entries in params
  uint32_t table_count = 0;  // entries (0: no table)
  uint32_t pq_d = 0, pq_k = 0;
  uint64_t pq_at = 0;        // pq: offset of the k x d binary16 centroids in params
  uint64_t chan_inner = 1;   // scalar_channel: elements of one channel's run (R)
  uint64_t chan_count = 0;   // and channels (C); element i is in channel (i / R) mod C
  uint64_t chan_at = 0;      // offset of the C binary32 steps in params
};

namespace recon {

// Output element of stream position i.
UDC_HD inline uint64_t StreamOffset(const ReconPlan& p, uint64_t i) {
  if (p.identity) return i;
  uint64_t offset = 0;
  for (int d = p.ndim - 1; d >= 0; --d) {
    offset += (i % p.tshape[d]) * p.tstride[d];
    i /= p.tshape[d];
  }
  return offset;
}

UDC_HD inline void StoreElement(uint8_t* out, uint64_t element, float w, bool half) {
  if (half) {
    StoreU16(out, 2 * element, FloatToHalfBits(w));
  } else {
    StoreU32(out, 4 * element, FloatBits(w));
  }
}

// Codeword table entries (FORMAT.md 4.6): n u32 keys then n f32 values each. Binary search
// on the lexicographic key order (the order Validate checked); -1 when absent.
UDC_HD inline int64_t TableFind(const uint8_t* entries, uint32_t count, int n, const uint32_t* key) {
  int64_t lo = 0, hi = static_cast<int64_t>(count) - 1;
  while (lo <= hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    const uint8_t* k = entries + static_cast<uint64_t>(mid) * 8u * static_cast<uint64_t>(n);
    int c = 0;
    for (int j = 0; j < n && c == 0; ++j) {
      const uint32_t a = LoadLE32(k + 4 * j);
      if (a != key[j]) c = a < key[j] ? -1 : 1;
    }
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1; else hi = mid - 1;
  }
  return -1;
}

UDC_HD inline float TableValue(const uint8_t* entries, int n, uint64_t e, int j) {
  return LoadLEF32(entries + e * 8u * static_cast<uint64_t>(n) + 4u * static_cast<uint64_t>(n + j));
}

template <int W>
UDC_HD inline void RawElement(const ReconPlan& p, const uint8_t* symbols, uint8_t* out, uint64_t i) {
  for (int k = 0; k < W; ++k) out[i * W + k] = symbols[static_cast<uint64_t>(k) * p.numel + i];
}

// The scalar formula of 4.1 (with the table of 4.6 when `use_table`) at stream position i.
template <int W>
UDC_HD inline float ScalarValue(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint64_t i,
                                bool use_table) {
  const uint32_t s = PlanarSymbol<W>(symbols, p.numel, i);
  float a = static_cast<float>(ZigzagDecode(s));
  if (use_table && p.table_count) {
    const int64_t e = TableFind(params + p.table_at, p.table_count, 1, &s);
    if (e >= 0) a = TableValue(params + p.table_at, 1, static_cast<uint64_t>(e), 0);
  }
  const float t = a - Dither(p.seed, i);
  return t * p.step;
}

template <class G, int W>
UDC_HD inline void LatticeVector(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                               uint64_t u) {
  constexpr int N = G::kN;
  const uint64_t nvec = p.numel / N;
  if (u >= nvec) {  // the tail: scalar formula, no table
    const uint64_t i = nvec * N + (u - nvec);
    StoreElement(out, StreamOffset(p, i), ScalarValue<W>(p, symbols, params, i, false), p.half);
    return;
  }
  uint32_t key[N];
  int64_t s[N], q[N];
  for (int j = 0; j < N; ++j) {
    key[j] = PlanarSymbol<W>(symbols, p.numel, u * N + j);
    s[j] = ZigzagDecode(key[j]);
  }
  G::FromSigned(s, q);
  const int64_t e = p.table_count ? TableFind(params + p.table_at, p.table_count, N, key) : -1;
  float dither[N];
  lattice::VectorDither<G>(p.seed, u, dither);
  for (int j = 0; j < N; ++j) {
    const float a = e >= 0 ? TableValue(params + p.table_at, N, static_cast<uint64_t>(e), j) : static_cast<float>(q[j]);
    const float t = a - dither[j];
    const float w = t * p.scale[j];
    StoreElement(out, StreamOffset(p, u * N + j), w, p.half);
  }
}

template <int W>
UDC_HD inline void PQElement(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                             uint64_t i) {
  const uint64_t b = i / p.pq_d, j = i % p.pq_d;
  const uint32_t idx = PlanarSymbol<W>(symbols, p.nsym, b);
  if (idx >= p.pq_k) return;  // unreachable: CheckSymbols rejected the blob
  const uint16_t bits = LoadLE16(params + p.pq_at + 2 * (uint64_t{idx} * p.pq_d + j));
  const uint64_t at = StreamOffset(p, i);
  if (p.half) {
    StoreU16(out, 2 * at, bits);
  } else {
    StoreU32(out, 4 * at, FloatBits(HalfBitsToFloat(bits)));
  }
}

// The per-channel scalar formula of 4.8 at element i (the formula of 4.1 with step_c).
template <int W>
UDC_HD inline void ChannelElement(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                                  uint64_t i) {
  const uint64_t c = (i / p.chan_inner) % p.chan_count;  // chan_count > 0: there are elements
  const float step = LoadLEF32(params + p.chan_at + 4 * c);
  const uint32_t s = PlanarSymbol<W>(symbols, p.numel, i);
  const float a = static_cast<float>(ZigzagDecode(s));
  const float t = a - Dither(p.seed, i);
  StoreElement(out, i, t * step, p.half);
}

// The work items named in quantizers/list.h: Unit::Run<W>(plan, symbols, params, out, u).
struct RawUnit {
  template <int W>
  UDC_HD static void Run(const ReconPlan& p, const uint8_t* symbols, const uint8_t* /*params*/, uint8_t* out,
                         uint64_t u) {
    RawElement<W>(p, symbols, out, u);
  }
};

struct ScalarUnit {
  template <int W>
  UDC_HD static void Run(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                         uint64_t u) {
    StoreElement(out, u, ScalarValue<W>(p, symbols, params, u, true), p.half);
  }
};

template <class G>
struct LatticeUnit {
  template <int W>
  UDC_HD static void Run(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                         uint64_t u) {
    LatticeVector<G, W>(p, symbols, params, out, u);
  }
};

struct PQUnit {
  template <int W>
  UDC_HD static void Run(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                         uint64_t u) {
    PQElement<W>(p, symbols, params, out, u);
  }
};

struct ScalarChannelUnit {
  template <int W>
  UDC_HD static void Run(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                         uint64_t u) {
    ChannelElement<W>(p, symbols, params, out, u);
  }
};

// One case per line of quantizers/list.h.
template <int W>
UDC_HD inline void Unit(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out, uint64_t u) {
#define UDC_RECON_CASE(id, Kind, name, factory, UnitType)         \
  case Recon::k##Kind:                                             \
    UnitType::template Run<W>(p, symbols, params, out, u);         \
    break;
  switch (p.kind) { UDC_QUANTIZERS(UDC_RECON_CASE) }
#undef UDC_RECON_CASE
}

}  // namespace recon

// Work item u of the plan (u < plan.units).
UDC_HD inline void ReconstructUnit(const ReconPlan& p, const uint8_t* symbols, const uint8_t* params, uint8_t* out,
                                   uint64_t u) {
  switch (p.width) {
    case 1: recon::Unit<1>(p, symbols, params, out, u); break;
    case 2: recon::Unit<2>(p, symbols, params, out, u); break;
    default: recon::Unit<4>(p, symbols, params, out, u); break;
  }
}

}  // namespace udc

#endif  // UDC_CORE_RECONSTRUCT_H_
