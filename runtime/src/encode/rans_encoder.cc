// The encoder of coder 3, rans (FORMAT.md 5.3).
//
//   symbols -> one pass in decode order: tokens (rans_model.h), the extra-bit stream and,
//   for every context shift tried at once, each symbol's context (a nibble) and a histogram
//   [context bucket][token] -> for each (shift, contexts, prob_bits): the payload size
//   estimated from normalised frequencies -> the smallest -> tables, extra bits, rANS words
//   (backward over the decode order, x / f as a multiply, reversed at the end).
//
// The choice is encoder-side only (any parameters decode); the estimate counts the tables,
// the extra bits and sum(count * log2(M / f)) for the words, which is within a few bytes
// of the real word stream, so the chosen payload is within a few bytes of the smallest.
#include "encode/rans_encoder.h"

#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>

#include "core/coders/rans_model.h"

namespace udc {
namespace {

using rans::kMaxContexts;
using rans::kMaxTokens;

constexpr unsigned kAutoShifts[] = {2, 3, 4, 5};
constexpr unsigned kAutoContexts[] = {1, 2, 3, 4, 5, 6, 8, 10, 12, 16};
constexpr unsigned kAutoProbBits[] = {10, 11, 12};
constexpr unsigned kPackedShifts = 4;  // context nibbles in a uint16_t: shifts tried at once

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
__extension__ typedef unsigned __int128 U128;  // GCC and Clang on 64-bit targets

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

// Log2 of the integers 1..2^15 (every frequency a table can hold), computed once with Log2:
// the same doubles as calling it, without its series per token of every candidate.
const double* Log2Table() {
  static const std::vector<double> table = [] {
    std::vector<double> t((size_t{1} << rans::kMaxProbBits) + 1, 0.0);
    for (size_t v = 1; v < t.size(); ++v) t[v] = Log2(static_cast<double>(v));
    return t;
  }();
  return table.data();
}

// Estimated bytes of one table plus its words' bits (in bits, returned separately).
double RowCost(const uint64_t* h, unsigned prob_bits, double* table_bytes) {
  uint32_t f[kMaxTokens];
  const unsigned count = Normalize(h, uint32_t{1} << prob_bits, f);
  double bytes = VarintSize(count);
  double bits = 0;
  for (unsigned t = 0; t < count; ++t) {
    bytes += VarintSize(f[t]);
    if (h[t]) bits += static_cast<double>(h[t]) * (prob_bits - Log2Table()[f[t]]);
  }
  *table_bytes = bytes;
  return bits;
}

// rans::Tokenize without branches (the symbols of a quantized tensor straddle the direct
// range: a branch on s < 32 is mispredicted about half the time): the same token.
inline rans::Token TokenizeBranchless(uint32_t s) {
  const unsigned k = rans::BitLen(s | 1u) - 1;
  const bool direct = s < rans::kDirect;
  const unsigned nextra = direct ? 0u : k - 2;
  const unsigned token = direct ? s : rans::kDirect + 4 * (k - 5) + ((s >> nextra) & 3u);
  return {token, nextra, s & ((uint32_t{1} << nextra) - 1)};
}

// 8 bytes of v at p, least significant first.
inline void StoreLE64(uint8_t* p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  std::memcpy(p, &v, 8);
#else
  for (unsigned b = 0; b < 8; ++b) p[b] = static_cast<uint8_t>(v >> (8 * b));
#endif
}

// What the forward scan reads and fills (RansEncode's first pass); T: the symbols' type.
template <typename T>
struct Scan {
  const T* symbols;
  uint64_t numel;
  unsigned lanes;
  unsigned shift_of[kPackedShifts];
  uint8_t* token;     // [numel]
  uint16_t* ctx4;     // [numel]: nibble k = the context under shift_of[k] (kMaxContexts buckets)
  Row* hist;          // [shifts][kMaxContexts] token counts
  Row* order0;        // token counts
  std::vector<uint8_t>* extra;  // the extra-bit stream, LSB first
};

// One pass in decode order (round by round, the lanes in order within a round): the tokens,
// the order-0 histogram, the extra-bit stream and, for each of kShifts shifts, every
// symbol's context and a [context][token] histogram. Returns the extra bits' count. Written
// as plain loops with the bit writer in locals (a closure's captures would go through
// memory on every symbol).
template <unsigned kShifts, typename T>
uint64_t ForwardScan(const Scan<T>& scan) {
  const uint64_t seg = rans::SegmentLength(scan.numel, scan.lanes);
  uint64_t length[rans::kMaxLanes];
  for (unsigned j = 0; j < scan.lanes; ++j) length[j] = rans::LaneLength(scan.numel, seg, j);
  uint32_t a[kPackedShifts][rans::kMaxLanes] = {};
  std::vector<uint8_t>& extra = *scan.extra;
  extra.assign(1024, 0);
  uint64_t buf = 0, extra_bits = 0;
  unsigned count = 0;
  size_t pos = 0;
  unsigned active = scan.lanes;
  for (uint64_t r = 0; r < seg; ++r) {
    while (active > 0 && length[active - 1] <= r) --active;
    for (unsigned j = 0; j < active; ++j) {
      const uint64_t i = seg * j + r;
      const uint32_t s = scan.symbols[i];
      const rans::Token t = TokenizeBranchless(s);
      scan.token[i] = static_cast<uint8_t>(t.token);
      ++(*scan.order0)[t.token];
      extra_bits += t.nextra;
      buf |= uint64_t{t.extra} << count;  // count < 8, nextra <= 29: below 64 bits
      count += t.nextra;
      if (pos + 8 > extra.size()) extra.resize(2 * extra.size());  // rare
      StoreLE64(&extra[pos], buf);  // the whole bytes and the partial one (rewritten next time)
      pos += count >> 3;
      buf >>= count & ~7u;
      count &= 7u;
      if (kShifts) {
        unsigned packed = 0;
        for (unsigned k = 0; k < kShifts; ++k) {
          const unsigned c = rans::Context(a[k][j], scan.shift_of[k], kMaxContexts);
          ++scan.hist[k * kMaxContexts + c][t.token];
          a[k][j] = rans::UpdateContext(a[k][j], scan.shift_of[k], s);
          packed |= c << (4 * k);
        }
        scan.ctx4[i] = static_cast<uint16_t>(packed);
      }
    }
  }
  extra.resize(pos + (count ? 1 : 0));  // the partial byte is in place already
  return extra_bits;
}

// RansEncode on symbols of any unsigned type T (uint8_t, uint16_t, uint32_t).
template <typename T>
Status Encode(const T* symbols, uint64_t numel, unsigned width, const RansParams& forced,
              std::vector<uint8_t>* payload) {
  if (width != 1 && width != 2 && width != 4) return Invalid("symbol width must be 1, 2 or 4");
  if (numel != 0 && symbols == nullptr) return Invalid("symbols is NULL");
  if (forced.lanes > rans::kMaxLanes) return Invalid("lanes must be 1..32");
  if (forced.prob_bits != 0 && (forced.prob_bits < rans::kMinProbBits || forced.prob_bits > rans::kMaxProbBits)) {
    return Invalid("prob_bits must be 8..15");
  }
  if (forced.contexts > kMaxContexts) return Invalid("contexts must be 1..16");
  if (forced.shift > rans::kMaxShift) return Invalid("shift must be 1..8");
  if (width < sizeof(T)) {
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

  std::vector<unsigned> shifts, contexts_list, probs;
  if (forced.shift) shifts.push_back(forced.shift); else shifts.assign(std::begin(kAutoShifts), std::end(kAutoShifts));
  if (forced.contexts) contexts_list.push_back(forced.contexts);
  else contexts_list.assign(std::begin(kAutoContexts), std::end(kAutoContexts));
  if (forced.prob_bits) probs.push_back(forced.prob_bits); else probs.assign(std::begin(kAutoProbBits), std::end(kAutoProbBits));
  bool need_context = false;
  for (unsigned n : contexts_list) need_context |= n > 1;
  static_assert(sizeof(kAutoShifts) / sizeof(kAutoShifts[0]) <= kPackedShifts, "a context nibble per shift tried");
  const unsigned n_shifts = need_context ? static_cast<unsigned>(shifts.size()) : 0u;

  // ---- one pass in decode order: the tokens, the extra-bit stream (LSB first), the order-0
  // histogram and, for every shift tried, each symbol's context (nibble k of ctx4[i], the
  // context with all kMaxContexts buckets) and a histogram [shift][context][token] ---------
  std::vector<uint8_t> token(numel);
  std::vector<uint16_t> ctx4(n_shifts ? numel : 0);
  std::vector<Row> hist(static_cast<size_t>(n_shifts) * kMaxContexts);
  for (Row& row : hist) std::memset(row, 0, sizeof(Row));
  Row order0 = {};
  std::vector<uint8_t> extra;
  uint64_t extra_bits = 0;
  {
    Scan<T> scan{symbols, numel, lanes, {}, token.data(), ctx4.data(), hist.data(), &order0, &extra};
    for (unsigned k = 0; k < n_shifts; ++k) scan.shift_of[k] = shifts[k];
    switch (n_shifts) {  // the shifts tried as a compile-time count: the context loop unrolled
      case 0: extra_bits = ForwardScan<0>(scan); break;
      case 1: extra_bits = ForwardScan<1>(scan); break;
      case 2: extra_bits = ForwardScan<2>(scan); break;
      case 3: extra_bits = ForwardScan<3>(scan); break;
      default: extra_bits = ForwardScan<kPackedShifts>(scan); break;
    }
  }

  // ---- the choice: (shift, contexts, prob_bits) with the smallest estimated payload ----
  struct Choice {
    unsigned shift = 1, contexts = 1, prob_bits = 12, shift_index = 0;
    double bytes = 1e300;
  } best;
  const double fixed = rans::kHeaderBytes + VarintSize((extra_bits + 7) / 8) + static_cast<double>((extra_bits + 7) / 8) + 4.0 * lanes;
  // rows c < n - 1 of a shift's histogram as they are, the last one merging the rest
  auto context_rows = [&](unsigned k, unsigned n, Row* out) {
    if (n <= 1 || hist.empty()) {  // (hist is empty only when every candidate has one context)
      std::memcpy(out[0], order0, sizeof(Row));
      return;
    }
    const Row* h = &hist[static_cast<size_t>(k) * kMaxContexts];
    for (unsigned c = 0; c + 1 < n; ++c) std::memcpy(out[c], h[c], sizeof(Row));
    Row& merged = out[n - 1];
    std::memset(merged, 0, sizeof(Row));
    for (unsigned c = n - 1; c < kMaxContexts; ++c) {
      for (unsigned t = 0; t < kMaxTokens; ++t) merged[t] += h[c][t];
    }
  };
  std::vector<Row> rows(kMaxContexts);
  for (unsigned k = 0; k < shifts.size(); ++k) {
    for (unsigned n : contexts_list) {
      context_rows(k, n, rows.data());
      for (unsigned pb : probs) {
        double bytes = fixed, bits = 0, tb = 0;
        for (unsigned c = 0; c < n; ++c) {
          bits += RowCost(rows[c], pb, &tb);
          bytes += tb;
        }
        bytes += bits / 8;
        if (bytes < best.bytes) best = {shifts[k], n, pb, k, bytes};
      }
    }
  }

  // ---- the tables of the choice --------------------------------------------------------
  const unsigned n_ctx = best.contexts, shift = best.shift, pb = best.prob_bits;
  const uint32_t m = uint32_t{1} << pb;
  context_rows(best.shift_index, n_ctx, rows.data());
  // per (context, token): frequency, cumulative frequency, renormalisation bound and
  // ceil(2^64 / f), which turns x / f into a multiply (exact for 32-bit x; 0 for f = 1)
  struct Slot {
    uint64_t reciprocal;
    uint64_t x_max;
    uint32_t freq;
    uint32_t cum;
  };
  std::vector<Slot> slots(static_cast<size_t>(n_ctx) * kMaxTokens);
  std::vector<uint8_t>& out = *payload;
  out.clear();
  out.reserve(static_cast<size_t>(best.bytes < 1e15 ? best.bytes : 0) + 64);
  out.push_back(rans::kVariant);
  out.push_back(static_cast<uint8_t>(lanes));
  out.push_back(static_cast<uint8_t>(pb));
  out.push_back(static_cast<uint8_t>(n_ctx));
  out.push_back(static_cast<uint8_t>(shift));
  for (unsigned c = 0; c < n_ctx; ++c) {
    uint32_t f[kMaxTokens];
    const unsigned count = Normalize(rows[c], m, f);
    PutVarint(&out, count);
    uint32_t run = 0;
    for (unsigned t = 0; t < count; ++t) {
      PutVarint(&out, f[t]);
      Slot& slot = slots[static_cast<size_t>(c) * kMaxTokens + t];
      slot.freq = f[t];
      slot.cum = run;
      slot.x_max = uint64_t{f[t]} << (32 - pb);
      slot.reciprocal = f[t] > 1 ? UINT64_MAX / f[t] + 1 : 0;
      run += f[t];
    }
  }

  // ---- extra bits, forward (decode order) ----------------------------------------------
  const uint64_t extra_bytes = (extra_bits + 7) / 8;
  if (extra.size() != extra_bytes) return Status(Code::kInternal, "rans encoder: extra-bit stream length");
  PutVarint(&out, extra_bytes);
  out.insert(out.end(), extra.begin(), extra.end());
  std::vector<uint8_t>().swap(extra);

  // ---- rANS, backward over the decode order; words reversed at the end -----------------
  std::vector<uint16_t> words(static_cast<size_t>(best.bytes < 1e15 ? best.bytes / 2 : 0) + 1024);
  size_t n_words = 0;
  uint32_t x[rans::kMaxLanes];
  for (unsigned j = 0; j < lanes; ++j) x[j] = rans::kStateLow;
  {
    const uint64_t seg = rans::SegmentLength(numel, lanes);
    uint64_t length[rans::kMaxLanes];
    for (unsigned j = 0; j < lanes; ++j) length[j] = rans::LaneLength(numel, seg, j);
    const unsigned nibble = 4 * best.shift_index;
    const unsigned last = n_ctx - 1;
    for (uint64_t r = seg; r-- > 0;) {
      for (unsigned j = lanes; j-- > 0;) {
        if (length[j] <= r) continue;
        const uint64_t i = seg * j + r;
        unsigned c = 0;
        if (n_ctx > 1) {
          c = (ctx4[i] >> nibble) & 15u;
          c = c < last ? c : last;
        }
        const Slot& slot = slots[static_cast<size_t>(c) * kMaxTokens + token[i]];
        uint32_t v = x[j];
        // renormalise without a branch (taken about as often as not): the word is always
        // written, kept only when v >= x_max
        if (n_words + 1 > words.size()) words.resize(2 * words.size() + 1024);  // rare
        words[n_words] = static_cast<uint16_t>(v & 0xFFFFu);
        const unsigned emit = v >= slot.x_max ? 16u : 0u;
        n_words += emit >> 4;
        v >>= emit;
        // v / f: the high half of v * ceil(2^64 / f) (exact for v < 2^32), v itself for f = 1
        const uint32_t q = slot.freq > 1
                               ? static_cast<uint32_t>((static_cast<U128>(slot.reciprocal) * v) >> 64)
                               : v;
        x[j] = (q << pb) + (v - q * slot.freq) + slot.cum;
      }
    }
  }
  const size_t at = out.size();
  out.resize(at + 4 * static_cast<size_t>(lanes) + 2 * n_words);
  uint8_t* o = out.data() + at;
  for (unsigned j = 0; j < lanes; ++j) {
    for (unsigned b = 0; b < 4; ++b) *o++ = static_cast<uint8_t>(x[j] >> (8 * b));
  }
  for (size_t w = n_words; w-- > 0;) {
    *o++ = static_cast<uint8_t>(words[w]);
    *o++ = static_cast<uint8_t>(words[w] >> 8);
  }
  return Status::Ok();
}

}  // namespace

Status RansEncode(const uint32_t* symbols, uint64_t numel, unsigned width, const RansParams& forced,
                  std::vector<uint8_t>* payload) {
  return Encode(symbols, numel, width, forced, payload);
}

Status RansEncodeElements(const void* symbols, unsigned element_bytes, uint64_t numel, unsigned width,
                          const RansParams& forced, std::vector<uint8_t>* payload) {
  switch (element_bytes) {
    case 1: return Encode(static_cast<const uint8_t*>(symbols), numel, width, forced, payload);
    case 2: return Encode(static_cast<const uint16_t*>(symbols), numel, width, forced, payload);
    case 4: return Encode(static_cast<const uint32_t*>(symbols), numel, width, forced, payload);
    default: return Invalid("symbols must be 1, 2 or 4 bytes each");
  }
}

}  // namespace udc
