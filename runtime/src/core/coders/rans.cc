// Coder 3, rans (FORMAT.md section 5.3): static frequency tables per context, interleaved
// rANS lanes with 32-bit states and 16-bit words, raw extra bits for large symbols.
//
//   decode: header (5 bytes) -> tables (varints) -> extra-bit stream -> word stream
//           round r: for each lane with a symbol r: slot -> token (table of its context),
//           state update, at most one 16-bit read; token -> symbol (+ extra bits)
//   (the encoder is src/encode/rans_encoder.cc: not in the core)
//
// Untrusted input: every table is checked (token count within the width, frequencies
// summing to exactly 2^prob_bits) before anything is decoded, so every decoded symbol fits
// the width; the loop is bounded by numel; reads are checked against the stream ends; and
// the payload must end canonically: every lane's state back at 2^16, every word and every
// extra-bit byte used, the padding bits zero. Anything else is kCorruptPayload.
#include "core/coders/rans.h"

#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/coders.h"
#include "core/coders/planar.h"
#include "core/coders/rans_model.h"

namespace udc {
namespace {

Status Corrupt(const std::string& what) { return Status(Code::kCorruptPayload, "rans payload " + what); }

// LEB128, at most 5 bytes, value < 2^32, canonical (no empty last group).
bool ReadVarint(const uint8_t*& p, const uint8_t* end, uint32_t* value) {
  uint64_t v = 0;
  for (unsigned i = 0; i < 5; ++i) {
    if (p >= end) return false;
    const uint8_t b = *p++;
    v |= uint64_t{b & 0x7Fu} << (7 * i);
    if ((b & 0x80u) == 0) {
      if (i > 0 && b == 0) return false;
      if (v > 0xFFFFFFFFull) return false;
      *value = static_cast<uint32_t>(v);
      return true;
    }
  }
  return false;
}

struct Stream {
  unsigned lanes = 0, prob_bits = 0, contexts = 0, shift = 0;
  std::vector<uint32_t> entry;  // [contexts << prob_bits]: freq | (slot - cum) << 16
  std::vector<uint8_t> token;   // [contexts << prob_bits]
  const uint8_t* extra = nullptr;
  uint64_t extra_len = 0;
  const uint8_t* words = nullptr;
  uint64_t words_len = 0;
};

Status Parse(const uint8_t* payload, uint64_t len, unsigned width, Stream* s) {
  if (len < rans::kHeaderBytes) return Corrupt("is shorter than its 5-byte header");
  if (payload[0] != rans::kVariant) {
    return Corrupt("has variant " + std::to_string(payload[0]) + " (this decoder knows variant 1)");
  }
  s->lanes = payload[1];
  s->prob_bits = payload[2];
  s->contexts = payload[3];
  s->shift = payload[4];
  if (s->lanes < 1 || s->lanes > rans::kMaxLanes) return Corrupt("has " + std::to_string(s->lanes) + " lanes (1..32)");
  if (s->prob_bits < rans::kMinProbBits || s->prob_bits > rans::kMaxProbBits) {
    return Corrupt("has prob_bits " + std::to_string(s->prob_bits) + " (8..15)");
  }
  if (s->contexts < 1 || s->contexts > rans::kMaxContexts) {
    return Corrupt("has " + std::to_string(s->contexts) + " contexts (1..16)");
  }
  if (s->shift < rans::kMinShift || s->shift > rans::kMaxShift) {
    return Corrupt("has context shift " + std::to_string(s->shift) + " (1..8)");
  }
  const uint32_t m = uint32_t{1} << s->prob_bits;
  const unsigned max_tokens = rans::TokenCount(width);
  const uint8_t* p = payload + rans::kHeaderBytes;
  const uint8_t* end = payload + len;
  s->entry.assign(static_cast<size_t>(s->contexts) << s->prob_bits, 0);
  s->token.assign(static_cast<size_t>(s->contexts) << s->prob_bits, 0);
  for (unsigned c = 0; c < s->contexts; ++c) {
    uint32_t count = 0;
    if (!ReadVarint(p, end, &count)) return Corrupt("table " + std::to_string(c) + " has no valid token count");
    if (count < 1 || count > max_tokens) {
      return Corrupt("table " + std::to_string(c) + " has " + std::to_string(count) + " tokens (1.." +
                     std::to_string(max_tokens) + " for " + std::to_string(width) + "-byte symbols)");
    }
    uint64_t cum = 0;
    const size_t base = static_cast<size_t>(c) << s->prob_bits;
    for (uint32_t t = 0; t < count; ++t) {
      uint32_t f = 0;
      if (!ReadVarint(p, end, &f)) return Corrupt("table " + std::to_string(c) + " ends inside its frequencies");
      if (f > m || cum + f > m) return Corrupt("table " + std::to_string(c) + " frequencies exceed 2^prob_bits");
      for (uint32_t k = 0; k < f; ++k) {
        s->entry[base + cum + k] = f | (k << 16);
        s->token[base + cum + k] = static_cast<uint8_t>(t);
      }
      cum += f;
    }
    if (cum != m) {
      return Corrupt("table " + std::to_string(c) + " frequencies sum to " + std::to_string(cum) + ", not " +
                     std::to_string(m));
    }
  }
  uint32_t extra_len = 0;
  if (!ReadVarint(p, end, &extra_len)) return Corrupt("has no valid extra-bit length");
  if (extra_len > static_cast<uint64_t>(end - p)) return Corrupt("extra-bit stream runs past the payload");
  s->extra = p;
  s->extra_len = extra_len;
  p += extra_len;
  s->words = p;
  s->words_len = static_cast<uint64_t>(end - p);
  if (s->words_len < 4ull * s->lanes) return Corrupt("is too short for the lanes' initial states");
  if ((s->words_len & 1u) != 0) return Corrupt("word stream has an odd number of bytes");
  return Status::Ok();
}

// The extra-bit stream, LSB first, read at a bit position from a zero-padded copy: Read(n)
// is an unaligned 8-byte load and no branch. A round of at most kMaxLanes reads of at
// most 29 bits starting inside the stream stays inside the copy (Inside() is checked
// before each round); reading past the stream's end is detected at the end (Consumed).
class BitReader {
 public:
  static constexpr uint64_t kPad = 8 + (29 * rans::kMaxLanes + 7) / 8;
  BitReader(const uint8_t* data, uint64_t len) : len_(len), copy_(len + kPad, 0) {
    if (len) std::memcpy(copy_.data(), data, len);
  }
  bool Inside() const { return (pos_ >> 3) <= len_; }
  uint32_t Read(unsigned n) {
    uint64_t word;
    std::memcpy(&word, copy_.data() + (pos_ >> 3), 8);
    const uint32_t v = static_cast<uint32_t>((word >> (pos_ & 7)) & ((uint64_t{1} << n) - 1));
    pos_ += n;
    return v;
  }
  bool Overran() const { return pos_ > 8 * len_; }
  uint64_t& pos() { return pos_; }
  const uint8_t* data() const { return copy_.data(); }
  uint64_t len() const { return len_; }
  // Every byte used and the padding bits of the last one zero.
  bool EndsCanonically() const {
    if (Overran() || (pos_ + 7) / 8 != len_) return false;
    return (pos_ & 7) == 0 || (copy_[len_ - 1] >> (pos_ & 7)) == 0;
  }

 private:
  uint64_t len_;
  uint64_t pos_ = 0;
  std::vector<uint8_t> copy_;
};

inline uint32_t Le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// What one symbol needs, copied into the bulk loop's own frame (no aliasing with the output).
struct Tables {
  const uint32_t* entry;
  const uint8_t* token;
  const uint32_t* base;
  const uint8_t* nextra;
  const uint8_t* extra;  // the zero-padded extra-bit copy
  unsigned bits;
  uint32_t mask;
  unsigned shift;
  unsigned contexts;
};

// One symbol of one lane in a full round (words and extra bits known to be there): no
// branch on the data.
template <bool kContexts, class Sink>
inline void Step(uint32_t& x, uint32_t& a, const uint8_t*& w, uint64_t& bp, const Tables& t, uint64_t i,
                 Sink& sink) {
  const uint32_t c = kContexts ? rans::Context(a, t.shift, t.contexts) : 0;
  const size_t idx = (static_cast<size_t>(c) << t.bits) | (x & t.mask);
  const uint32_t e = t.entry[idx];
  const unsigned tok = t.token[idx];
  const uint32_t v = (e & 0xFFFFu) * (x >> t.bits) + (e >> 16);
  const bool need = v < rans::kStateLow;
  const uint32_t word = uint32_t{w[0]} | (uint32_t{w[1]} << 8);
  x = need ? (v << 16) | word : v;
  w += need ? 2 : 0;
  const unsigned n = t.nextra[tok];
  uint64_t chunk;
  std::memcpy(&chunk, t.extra + (bp >> 3), 8);
  const uint32_t ex = static_cast<uint32_t>((chunk >> (bp & 7)) & ((uint64_t{1} << n) - 1));
  bp += n;
  const uint32_t sym = t.base[tok] + ex;
  if (kContexts) a = rans::UpdateContext(a, t.shift, sym);
  sink(i, sym);
}

// Rounds r .. r_end - 1 while every lane has a symbol and the round's words and extra bits
// are there, with the lanes' states in locals indexed by constants only (registers).
// Returns the first round not decoded.
template <unsigned K, bool kContexts, class Sink, size_t... J>
uint64_t Bulk(uint32_t* x_io, uint32_t* a_io, const uint8_t*& w_io, const uint8_t* end, BitReader& extra,
              const Tables& tables, uint64_t seg, uint64_t r, uint64_t r_end, Sink sink, std::index_sequence<J...>) {
  uint32_t x[K] = {x_io[J]...};
  uint32_t a[K] = {a_io[J]...};
  const Tables t = tables;
  const uint8_t* w = w_io;
  uint64_t bp = extra.pos();
  const uint64_t extra_len = extra.len();
  for (; r < r_end; ++r) {
    if (end - w < static_cast<ptrdiff_t>(2 * K) || (bp >> 3) > extra_len) break;
    (Step<kContexts>(x[J], a[J], w, bp, t, seg * J + r, sink), ...);
  }
  ((x_io[J] = x[J]), ...);
  ((a_io[J] = a[J]), ...);
  w_io = w;
  extra.pos() = bp;
  return r;
}

// kLanes: the lane count as a compile-time constant (0: s.lanes at run time), so the
// common payloads keep every lane's state in registers.
template <unsigned kLanes, bool kContexts, class Sink>
Status Run(const Stream& s, uint64_t numel, Sink&& sink) {
  const unsigned lanes = kLanes ? kLanes : s.lanes;
  const unsigned bits = s.prob_bits;
  const unsigned shift = s.shift, contexts = s.contexts;
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  const uint64_t seg = rans::SegmentLength(numel, lanes);
  uint32_t x[rans::kMaxLanes];
  uint32_t a[rans::kMaxLanes] = {};
  uint64_t length[rans::kMaxLanes];
  const uint8_t* w = s.words;
  const uint8_t* const end = s.words + s.words_len;
  for (unsigned j = 0; j < lanes; ++j) {
    x[j] = Le32(w);
    w += 4;
    if (x[j] < rans::kStateLow) return Corrupt("lane " + std::to_string(j) + " starts below 2^16");
    length[j] = rans::LaneLength(numel, seg, j);
  }
  uint32_t base[rans::kMaxTokens];  // token -> its smallest symbol; its extra bits
  uint8_t nextra[rans::kMaxTokens];
  for (unsigned t = 0; t < rans::kMaxTokens; ++t) {
    base[t] = t < rans::kDirect ? t : rans::Detokenize(t, 0);
    nextra[t] = static_cast<uint8_t>(rans::ExtraBits(t));
  }
  const uint32_t* entry = s.entry.data();
  const uint8_t* token = s.token.data();
  BitReader extra(s.extra, s.extra_len);
  // One symbol of lane j: table lookup, state update (before renormalisation), symbol.
  auto symbol = [&](unsigned j, uint64_t r) -> uint32_t {
    const uint32_t c = kContexts ? rans::Context(a[j], shift, contexts) : 0;
    const size_t idx = (static_cast<size_t>(c) << bits) | (x[j] & mask);
    const uint32_t e = entry[idx];
    const unsigned t = token[idx];
    const uint32_t v = (e & 0xFFFFu) * (x[j] >> bits) + (e >> 16);
    const uint32_t sym = base[t] + extra.Read(nextra[t]);
    if (kContexts) a[j] = rans::UpdateContext(a[j], shift, sym);
    sink(seg * j + r, sym);
    return v;
  };
  unsigned active = lanes;
  const ptrdiff_t round_bytes = 2 * static_cast<ptrdiff_t>(lanes);
  uint64_t r = 0;
  if constexpr (kLanes > 0) {
    const Tables tables{entry, token, base, nextra, extra.data(), bits, mask, shift, contexts};
    r = Bulk<kLanes, kContexts>(x, a, w, end, extra, tables, seg, 0, length[kLanes - 1], sink,
                                std::make_index_sequence<kLanes>{});
  }
  for (; r < seg; ++r) {
    while (active > 0 && length[active - 1] <= r) --active;
    if (!extra.Inside()) return Corrupt("extra-bit stream ends early");
    if (active == lanes && end - w >= round_bytes) {
      // Every lane, and words for all of them left: no branch on the data.
      for (unsigned j = 0; j < lanes; ++j) {
        const uint32_t v = symbol(j, r);
        const bool need = v < rans::kStateLow;
        const uint32_t word = uint32_t{w[0]} | (uint32_t{w[1]} << 8);
        x[j] = need ? (v << 16) | word : v;
        w += need ? 2 : 0;
      }
      continue;
    }
    for (unsigned j = 0; j < active; ++j) {
      uint32_t v = symbol(j, r);
      if (v < rans::kStateLow) {
        if (end - w < 2) return Corrupt("word stream ends early");
        v = (v << 16) | uint32_t{w[0]} | (uint32_t{w[1]} << 8);
        w += 2;
      }
      x[j] = v;
    }
  }
  if (extra.Overran()) return Corrupt("extra-bit stream ends early");
  for (unsigned j = 0; j < lanes; ++j) {
    if (x[j] != rans::kStateLow) return Corrupt("lane " + std::to_string(j) + " does not end in its initial state");
  }
  if (w != end) return Corrupt("has " + std::to_string(end - w) + " word byte(s) after the end of the stream");
  if (!extra.EndsCanonically()) return Corrupt("extra-bit stream has unused bytes or non-zero padding");
  return Status::Ok();
}

template <bool kContexts, class Sink>
Status RunLanes(const Stream& s, uint64_t numel, Sink&& sink) {
  switch (s.lanes) {  // the lane counts the encoder writes (rans_encoder.cc), unrolled
    case 8: return Run<8, kContexts>(s, numel, sink);
    case 4: return Run<4, kContexts>(s, numel, sink);
    case 1: return Run<1, kContexts>(s, numel, sink);
    default: return Run<0, kContexts>(s, numel, sink);
  }
}

template <class Sink>
Status DecodeStream(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned width, Sink&& sink) {
  if (width != 1 && width != 2 && width != 4) {
    return Status(Code::kInvalidArgument, "symbol width must be 1, 2 or 4, got " + std::to_string(width));
  }
  if (payload == nullptr && payload_len != 0) return Status(Code::kInvalidArgument, "payload is NULL");
  Stream s;
  UDC_RETURN_IF_ERROR(Parse(payload, payload_len, width, &s));
  return s.contexts > 1 ? RunLanes<true>(s, numel, sink) : RunLanes<false>(s, numel, sink);
}

class Rans final : public Coder {
 public:
  const char* name() const override { return "rans"; }

  Status Decode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                ByteBuffer* scratch, const uint8_t** symbols) const override {
    return DecodePlanar(numel, symbol_width, scratch, symbols, [&](auto sink) {
      return DecodeStream(payload, payload_len, numel, symbol_width, sink);
    });
  }
};

}  // namespace

Status RansDecode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                  uint32_t* out) {
  if (numel != 0 && out == nullptr) return Status(Code::kInvalidArgument, "out is NULL");
  return DecodeStream(payload, payload_len, numel, symbol_width, [out](uint64_t i, uint32_t s) { out[i] = s; });
}

const Coder& RansCoder() {
  static const Rans kRans;
  return kRans;
}

}  // namespace udc
