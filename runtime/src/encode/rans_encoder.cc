// The encoder of coder 3, rans (FORMAT.md 5.3).
//
//   symbols -> tokens (rans_model.h) -> for each context shift tried: the context of every
//   symbol and a histogram [context bucket][token] -> for each (contexts, prob_bits): the
//   payload size estimated from normalised frequencies -> the smallest -> tables, extra
//   bits (forward, in decode order), rANS words (backward, reversed at the end).
//
// The choice is encoder-side only (any parameters decode); the estimate counts the tables,
// the extra bits and sum(count * log2(M / f)) for the words, which is within a few bytes
// of the real word stream, so the chosen payload is within a few bytes of the smallest.
#include "encode/rans_encoder.h"

#include <cmath>
#include <cstring>
#include <string>

#include "core/coders/rans_model.h"

namespace udc {
namespace {

using rans::kMaxContexts;
using rans::kMaxTokens;

constexpr unsigned kAutoShifts[] = {2, 3, 4, 5};
constexpr unsigned kAutoContexts[] = {1, 2, 3, 4, 5, 6, 8, 10, 12, 16};
constexpr unsigned kAutoProbBits[] = {10, 11, 12};

Status Invalid(const std::string& what) { return Status(Code::kInvalidArgument, "rans encoder: " + what); }

unsigned VarintSize(uint64_t v) {
  unsigned n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(std::vector<uint8_t>* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<uint8_t>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<uint8_t>(v));
}

using Row = uint64_t[kMaxTokens];

// counts h[0..kMaxTokens) -> frequencies f summing to m (0 exactly where h is 0); returns
// the table's token count (last used token + 1, at least 1).
unsigned Normalize(const uint64_t* h, uint32_t m, uint32_t* f) {
  uint64_t total = 0;
  unsigned count = 0;
  for (unsigned t = 0; t < kMaxTokens; ++t) {
    total += h[t];
    if (h[t]) count = t + 1;
  }
  std::memset(f, 0, sizeof(uint32_t) * kMaxTokens);
  if (total == 0) {
    f[0] = m;
    return 1;
  }
  int64_t sum = 0;
  for (unsigned t = 0; t < count; ++t) {
    if (h[t] == 0) continue;
    const uint64_t v = (h[t] * m + total / 2) / total;
    f[t] = static_cast<uint32_t>(v < 1 ? 1 : v);
    sum += f[t];
  }
  while (sum != m) {  // adjust the largest frequency (at least 1 stays): few steps
    unsigned best = 0;
    for (unsigned t = 1; t < count; ++t) {
      if (f[t] > f[best]) best = t;
    }
    if (sum > m) {
      const int64_t room = static_cast<int64_t>(f[best]) - 1;
      const int64_t cut = sum - m < room ? sum - m : room;
      if (cut <= 0) break;  // cannot happen: more than m tokens would be needed
      f[best] -= static_cast<uint32_t>(cut);
      sum -= cut;
    } else {
      f[best] += static_cast<uint32_t>(m - sum);
      sum = m;
    }
  }
  return count;
}

// log2(v) for v >= 1 from frexp and the atanh series, no libm log: glibc's log2/log gained
// new symbol versions in 2.29, above the wheel's manylinux_2_28; and plain arithmetic gives
// the same estimate (hence the same payload) on every platform.
double Log2(double v) {
  int e = 0;
  const double m = std::frexp(v, &e);  // v = m * 2^e, m in [0.5, 1)
  const double z = (m - 1.0) / (m + 1.0), z2 = z * z;
  double term = z, sum = 0.0;
  for (int k = 1; k < 40; k += 2) {  // |z| <= 1/3: 20 terms are far below double precision
    sum += term / k;
    term *= z2;
  }
  return e + 2.0 * sum / 0.69314718055994530942;
}

// Estimated bytes of one table plus its words' bits (in bits, returned separately).
double RowCost(const uint64_t* h, unsigned prob_bits, double* table_bytes) {
  uint32_t f[kMaxTokens];
  const unsigned count = Normalize(h, uint32_t{1} << prob_bits, f);
  double bytes = VarintSize(count);
  double bits = 0;
  for (unsigned t = 0; t < count; ++t) {
    bytes += VarintSize(f[t]);
    if (h[t]) bits += static_cast<double>(h[t]) * (prob_bits - Log2(static_cast<double>(f[t])));
  }
  *table_bytes = bytes;
  return bits;
}

// The round-by-round decode order: calls fn(i) for i in the order the decoder meets them.
template <class Fn>
void ForwardOrder(uint64_t numel, unsigned lanes, Fn&& fn) {
  const uint64_t seg = rans::SegmentLength(numel, lanes);
  uint64_t length[rans::kMaxLanes];
  for (unsigned j = 0; j < lanes; ++j) length[j] = rans::LaneLength(numel, seg, j);
  unsigned active = lanes;
  for (uint64_t r = 0; r < seg; ++r) {
    while (active > 0 && length[active - 1] <= r) --active;
    for (unsigned j = 0; j < active; ++j) fn(j, seg * j + r);
  }
}

}  // namespace

Status RansEncode(const uint32_t* symbols, uint64_t numel, unsigned width, const RansParams& forced,
                  std::vector<uint8_t>* payload) {
  if (width != 1 && width != 2 && width != 4) return Invalid("symbol width must be 1, 2 or 4");
  if (numel != 0 && symbols == nullptr) return Invalid("symbols is NULL");
  if (forced.lanes > rans::kMaxLanes) return Invalid("lanes must be 1..32");
  if (forced.prob_bits != 0 && (forced.prob_bits < rans::kMinProbBits || forced.prob_bits > rans::kMaxProbBits)) {
    return Invalid("prob_bits must be 8..15");
  }
  if (forced.contexts > kMaxContexts) return Invalid("contexts must be 1..16");
  if (forced.shift > rans::kMaxShift) return Invalid("shift must be 1..8");
  if (width < 4) {
    const uint32_t limit = uint32_t{1} << (8 * width);
    for (uint64_t i = 0; i < numel; ++i) {
      if (symbols[i] >= limit) {
        return Invalid("symbol " + std::to_string(i) + " = " + std::to_string(symbols[i]) + " does not fit " +
                       std::to_string(width) + " byte(s)");
      }
    }
  }
  const unsigned lanes = forced.lanes
                             ? forced.lanes
                             : (numel >= (uint64_t{1} << 15) ? 8u : numel >= (uint64_t{1} << 13) ? 4u : 1u);  // decoder-unrolled counts

  std::vector<uint8_t> token(numel);
  uint64_t extra_bits = 0;
  Row order0 = {};
  for (uint64_t i = 0; i < numel; ++i) {
    const rans::Token t = rans::Tokenize(symbols[i]);
    token[i] = static_cast<uint8_t>(t.token);
    extra_bits += t.nextra;
    ++order0[t.token];
  }

  // ---- the choice: (shift, contexts, prob_bits) with the smallest estimated payload ----
  struct Choice {
    unsigned shift = 1, contexts = 1, prob_bits = 12;
    double bytes = 1e300;
  } best;
  std::vector<unsigned> shifts, contexts_list, probs;
  if (forced.shift) shifts.push_back(forced.shift); else shifts.assign(std::begin(kAutoShifts), std::end(kAutoShifts));
  if (forced.contexts) contexts_list.push_back(forced.contexts);
  else contexts_list.assign(std::begin(kAutoContexts), std::end(kAutoContexts));
  if (forced.prob_bits) probs.push_back(forced.prob_bits); else probs.assign(std::begin(kAutoProbBits), std::end(kAutoProbBits));
  const double fixed = rans::kHeaderBytes + VarintSize((extra_bits + 7) / 8) + static_cast<double>((extra_bits + 7) / 8) + 4.0 * lanes;

  std::vector<Row> hist(kMaxContexts);
  for (unsigned shift : shifts) {
    bool need_context = false;
    for (unsigned n : contexts_list) need_context |= n > 1;
    if (need_context) {
      for (Row& row : hist) std::memset(row, 0, sizeof(Row));
      uint32_t a[rans::kMaxLanes] = {};
      ForwardOrder(numel, lanes, [&](unsigned j, uint64_t i) {
        ++hist[rans::Context(a[j], shift, kMaxContexts)][token[i]];
        a[j] = rans::UpdateContext(a[j], shift, symbols[i]);
      });
    }
    for (unsigned n : contexts_list) {
      for (unsigned pb : probs) {
        double bytes = fixed, bits = 0, tb = 0;
        if (n == 1) {
          bits = RowCost(order0, pb, &tb);
          bytes += tb;
        } else {
          Row merged = {};
          for (unsigned c = n - 1; c < kMaxContexts; ++c) {
            for (unsigned t = 0; t < kMaxTokens; ++t) merged[t] += hist[c][t];
          }
          for (unsigned c = 0; c < n; ++c) {
            bits += RowCost(c + 1 < n ? hist[c] : merged, pb, &tb);
            bytes += tb;
          }
        }
        bytes += bits / 8;
        if (bytes < best.bytes) best = {shift, n, pb, bytes};
      }
    }
  }

  // ---- the contexts of the chosen shift, the final tables ------------------------------
  const unsigned n_ctx = best.contexts, shift = best.shift, pb = best.prob_bits;
  const uint32_t m = uint32_t{1} << pb;
  std::vector<uint8_t> ctx(n_ctx > 1 ? numel : 0);
  std::vector<Row> rows(n_ctx);
  for (Row& row : rows) std::memset(row, 0, sizeof(Row));
  {
    uint32_t a[rans::kMaxLanes] = {};
    ForwardOrder(numel, lanes, [&](unsigned j, uint64_t i) {
      const unsigned c = n_ctx > 1 ? rans::Context(a[j], shift, n_ctx) : 0;
      if (n_ctx > 1) {
        ctx[i] = static_cast<uint8_t>(c);
        a[j] = rans::UpdateContext(a[j], shift, symbols[i]);
      }
      ++rows[c][token[i]];
    });
  }
  std::vector<uint32_t> freq(static_cast<size_t>(n_ctx) * kMaxTokens), cum(static_cast<size_t>(n_ctx) * kMaxTokens);
  std::vector<uint8_t>& out = *payload;
  out.clear();
  out.reserve(static_cast<size_t>(best.bytes < 1e15 ? best.bytes : 0) + 64);
  out.push_back(rans::kVariant);
  out.push_back(static_cast<uint8_t>(lanes));
  out.push_back(static_cast<uint8_t>(pb));
  out.push_back(static_cast<uint8_t>(n_ctx));
  out.push_back(static_cast<uint8_t>(shift));
  for (unsigned c = 0; c < n_ctx; ++c) {
    uint32_t* f = &freq[static_cast<size_t>(c) * kMaxTokens];
    const unsigned count = Normalize(rows[c], m, f);
    PutVarint(&out, count);
    uint32_t run = 0;
    for (unsigned t = 0; t < count; ++t) {
      PutVarint(&out, f[t]);
      cum[static_cast<size_t>(c) * kMaxTokens + t] = run;
      run += f[t];
    }
  }

  // ---- extra bits, forward (decode order), LSB first ------------------------------------
  const uint64_t extra_bytes = (extra_bits + 7) / 8;
  PutVarint(&out, extra_bytes);
  const size_t extra_at = out.size();
  out.resize(extra_at + extra_bytes, 0);
  {
    uint64_t buf = 0, pos = extra_at;
    unsigned count = 0;
    ForwardOrder(numel, lanes, [&](unsigned /*j*/, uint64_t i) {
      const rans::Token t = rans::Tokenize(symbols[i]);
      if (t.nextra == 0) return;
      buf |= uint64_t{t.extra} << count;
      count += t.nextra;
      while (count >= 8) {
        out[pos++] = static_cast<uint8_t>(buf);
        buf >>= 8;
        count -= 8;
      }
    });
    if (count) out[pos++] = static_cast<uint8_t>(buf);
  }

  // ---- rANS, backward over the decode order; words reversed at the end -----------------
  std::vector<uint16_t> words;
  words.reserve(static_cast<size_t>(best.bytes / 2) + 16);
  uint32_t x[rans::kMaxLanes];
  for (unsigned j = 0; j < lanes; ++j) x[j] = rans::kStateLow;
  {
    const uint64_t seg = rans::SegmentLength(numel, lanes);
    uint64_t length[rans::kMaxLanes];
    for (unsigned j = 0; j < lanes; ++j) length[j] = rans::LaneLength(numel, seg, j);
    for (uint64_t r = seg; r-- > 0;) {
      for (unsigned j = lanes; j-- > 0;) {
        if (length[j] <= r) continue;
        const uint64_t i = seg * j + r;
        const size_t k = static_cast<size_t>(n_ctx > 1 ? ctx[i] : 0) * kMaxTokens + token[i];
        const uint32_t f = freq[k];
        const uint64_t x_max = uint64_t{f} << (32 - pb);
        uint32_t v = x[j];
        if (v >= x_max) {
          words.push_back(static_cast<uint16_t>(v & 0xFFFFu));
          v >>= 16;
        }
        x[j] = ((v / f) << pb) + (v % f) + cum[k];
      }
    }
  }
  for (unsigned j = 0; j < lanes; ++j) {
    for (unsigned b = 0; b < 4; ++b) out.push_back(static_cast<uint8_t>(x[j] >> (8 * b)));
  }
  for (size_t w = words.size(); w-- > 0;) {
    out.push_back(static_cast<uint8_t>(words[w]));
    out.push_back(static_cast<uint8_t>(words[w] >> 8));
  }
  return Status::Ok();
}

}  // namespace udc
