// range_model.h - coder 2 ("range", FORMAT.md section 5.2): the adaptive binary models,
// the context state and the symbol syntax, written ONCE for the encoder and the decoder.
//
//   symbol s (u32) --zigzag split--> mag, neg
//     zero flag   [ctx]            1 bin, adaptive         (mag == 0)
//     class k     [ctx][j]         unary, adaptive         (k = floor(log2 mag), truncated at 8w-1)
//     sign        [k][prev sign]   1 bin, adaptive         (the sign often depends on the magnitude)
//     mantissa    [k][node]        top 2 bits, adaptive; the other k-2 bits at probability 1/2
//   ctx = min(bitlen(A[i mod period] >> 4), 6), A = running mean of magnitudes * 16
//   models: one set, or one set per vector position (i mod period; extended variant 2)
//
// CodeSymbol<IO> is called with an IO that either encodes the bits it is given (and returns
// them) or ignores them and returns decoded bits; so the writer and reader cannot drift.
#ifndef UDC_CORE_CODERS_RANGE_MODEL_H_
#define UDC_CORE_CODERS_RANGE_MODEL_H_

#include <cstdint>
#include <vector>

namespace udc {
namespace range {

constexpr uint32_t kProbOne = uint32_t{1} << 16;  // probabilities are 16-bit: p / 65536
constexpr uint32_t kProbHalf = kProbOne / 2;
constexpr uint32_t kProbMin = 32;                  // p stays in [32, 65504]
constexpr uint32_t kProbMax = kProbOne - kProbMin;
constexpr uint32_t kCountMax = 255;                // adaptation rate 1/(n+2), n capped here
constexpr uint32_t kRangeTop = uint32_t{1} << 24;  // renormalise while range < 2^24
constexpr int kMagContexts = 7;
constexpr int kMaxClasses = 32;
constexpr int kModelledMantissaBits = 2;
constexpr uint32_t kMaxPeriod = 255;                // the legacy header: one period byte
constexpr uint32_t kMaxWidePeriod = uint32_t{1} << 20;  // the extended header (FORMAT.md 5.2): varint period
constexpr uint8_t kExtendedEscape = 0;              // payload[0] = 0: an extended header follows
constexpr uint8_t kVariantWidePeriod = 1;           // payload[1] = 1: varint period
constexpr uint8_t kVariantPositionModels = 2;       // payload[1] = 2: varint period, a model set per position
constexpr uint32_t kMaxPositionSets = 8;            // variant 2 needs period <= 8
constexpr uint32_t kMagClampForMean = uint32_t{1} << 20;

// One adaptive binary model: p = P(bit = 1) in units of 2^-16, n = updates seen (capped).
struct Bin {
  uint16_t p = static_cast<uint16_t>(kProbHalf);
  uint16_t n = 0;
};

// kRate[n] = 65536 / (n + 2): the adaptation rate of a model that has seen n bins.
struct RateTable {
  uint16_t v[kCountMax + 1];
  constexpr RateTable() : v() {
    for (uint32_t n = 0; n <= kCountMax; ++n) v[n] = static_cast<uint16_t>(kProbOne / (n + 2));
  }
};
constexpr RateTable kRate{};

// p += (bit - p) / (n + 2) in fixed point: from p = 1/2 this is the Krichevsky-Trofimov
// estimator (count + 1/2) / (total + 1) until n reaches kCountMax, then an exponential
// window of rate 1/257.
inline void Update(Bin& b, int bit) {
  uint32_t p = b.p;
  const uint32_t rate = kRate.v[b.n];
  if (bit) {
    p += ((kProbOne - p) * rate) >> 16;
  } else {
    p -= (p * rate) >> 16;
  }
  if (p < kProbMin) p = kProbMin;
  if (p > kProbMax) p = kProbMax;
  b.p = static_cast<uint16_t>(p);
  if (b.n < kCountMax) ++b.n;
}

inline int BitLength(uint32_t x) { return x == 0 ? 0 : 32 - __builtin_clz(x); }

// The adaptive models of one position set (FORMAT.md 5.2 "Models"). ~1.8 KB.
struct Bins {
  Bin zero[kMagContexts];
  Bin sign[kMaxClasses][3];
  Bin cls[kMagContexts][kMaxClasses];
  Bin mant[kMaxClasses][4];
};

// Every model and the context state of one stream: one model set, or one per vector
// position (extended variant 2, period <= kMaxPositionSets); 4 bytes per period position.
struct Model {
  std::vector<Bins> sets;
  Bins* set_base;
  uint32_t set_stride;               // 0: one set for every position; 1: a set per position
  std::vector<uint32_t> mean_store;  // A[0..period-1]: 16 x running mean of |q| at each vector position
  uint32_t* mean;
  uint32_t period = 1;
  uint32_t pos = 0;                // i mod period
  int prev_sign = 0;               // 0: previous symbol zero (or none), 1: positive, 2: negative

  // p in 1..kMaxWidePeriod, and p <= kMaxPositionSets when per_position (the caller checks):
  // at most 4 MiB of state.
  Model(uint32_t p, bool per_position)
      : sets(per_position ? p : 1),
        set_base(sets.data()),
        set_stride(per_position ? 1 : 0),
        mean_store(p, 0),
        mean(mean_store.data()),
        period(p) {}
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  Bins& Set() { return set_base[pos * set_stride]; }

  int MagContext() const {
    const int c = BitLength(mean[pos] >> 4);
    return c < kMagContexts - 1 ? c : kMagContexts - 1;
  }

  void Push(uint32_t mag, int neg) {
    uint32_t& a = mean[pos];
    a = a - (a >> 2) + 4 * (mag < kMagClampForMean ? mag : kMagClampForMean);
    prev_sign = mag == 0 ? 0 : 1 + neg;
    pos = pos + 1 == period ? 0 : pos + 1;
  }
};

// Codes one symbol. Encoder: `s` is the symbol, the return value equals it. Decoder: `s`
// is ignored and the decoded symbol is returned (as u64: a hostile stream can produce
// 2^(8w), which the caller rejects). max_class = 8 * symbol_width - 1.
template <class IO>
inline uint64_t CodeSymbol(IO& io, Model& m, uint32_t s, int max_class) {
  const uint32_t in_mag = (s >> 1) + (s & 1);
  const int ctx = m.MagContext();
  Bins& b = m.Set();
  if (io.Bit(b.zero[ctx], in_mag == 0)) {
    m.Push(0, 0);
    return 0;
  }
  const int in_class = BitLength(in_mag) - 1;
  int k = 0;
  while (k < max_class && io.Bit(b.cls[ctx][k], in_class > k)) ++k;
  const int neg = io.Bit(b.sign[k][m.prev_sign], static_cast<int>(s & 1));
  uint32_t mag = 1;
  unsigned node = 1;
  for (int j = k - 1; j >= 0; --j) {
    const int in_bit = static_cast<int>((in_mag >> j) & 1);
    int bit;
    if (k - 1 - j < kModelledMantissaBits) {
      bit = io.Bit(b.mant[k][node], in_bit);
      node = 2 * node + static_cast<unsigned>(bit);
    } else {
      bit = io.Bypass(in_bit);
    }
    mag = 2 * mag + static_cast<uint32_t>(bit);
  }
  m.Push(mag, neg);
  return 2 * uint64_t{mag} - static_cast<uint64_t>(neg);
}

}  // namespace range
}  // namespace udc

#endif  // UDC_CORE_CODERS_RANGE_MODEL_H_
