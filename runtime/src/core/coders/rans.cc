// Coder 3, rans (FORMAT.md section 5.3): static frequency tables per context, interleaved
// rANS lanes with 32-bit states and 16-bit words, raw extra bits for large symbols.
//
//   decode: header (5 bytes) -> tables (varints) -> extra-bit stream -> word stream
//           round r: for each lane with a symbol r: slot -> token (table of its context),
//           state update, at most one 16-bit read; token -> symbol (+ extra bits)
//   (the encoder is src/encode/rans_encoder.cc: not in the core)
//
// Two decoders of the same rounds: BulkAvx2 (8 lanes, prob_bits <= 12, width <= 2, a CPU
// with AVX2: the encoder's usual payloads) holds the 8 lanes in one vector and decodes 256
// rounds at a time into an L1 buffer, then stores them as planar bytes; Bulk/Step (scalar,
// any payload) do the rest and every round near the streams' ends, with the checks. Both
// run the arithmetic of FORMAT.md 5.3 exactly; core_tests compares them (core/simd.h caps
// the level).
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
#include "core/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// The vector decoder (BulkAvx2): 8 lanes, one u32 table entry per slot, symbols below 2^16.
bool VectorDecoderFits(unsigned lanes, unsigned prob_bits, unsigned width) {
  return lanes == 8 && prob_bits <= 12 && width <= 2 && simd::Active() >= simd::Level::kAvx2;
}

struct Stream {
  unsigned lanes = 0, prob_bits = 0, contexts = 0, shift = 0;
  std::vector<uint32_t> entry;  // [contexts << prob_bits]: freq | (slot - cum) << 16
  std::vector<uint8_t> token;   // [contexts << prob_bits]
  // The vector decoder's table (prob_bits <= 12, width <= 2), one u32 per slot:
  // (f - 1) | (slot - cum) << 12 | token << 24. Empty when that decoder does not apply.
  std::vector<uint32_t> packed;
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
  const bool pack = VectorDecoderFits(s->lanes, s->prob_bits, width);
  if (pack) s->packed.assign(static_cast<size_t>(s->contexts) << s->prob_bits, 0);
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
      if (pack) {
        for (uint32_t k = 0; k < f; ++k) s->packed[base + cum + k] = (f - 1) | (k << 12) | (t << 24);
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

// Where the symbols go as planar bytes (FORMAT.md section 3), for the vector decoder's own
// store; null: through the sink, one symbol at a time.
struct PlanarTarget {
  uint8_t* out;
  uint64_t numel;
  unsigned width;  // 1 or 2
};

#if defined(__x86_64__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"  // vectors stay inside this file's inline helpers
#define UDC_TARGET_AVX2 __attribute__((target("avx2,f16c,bmi2,popcnt")))

// Rounds decoded per call of BulkAvx2: its symbols ([round][lane]) fit in L1.
constexpr unsigned kVectorRounds = 256;

// Word routing of one round: for the mask m of the lanes that renormalise (bit j: lane j),
// lane j takes word popcount(m & (2^j - 1)) of the next 8 (the lanes read in lane order).
struct WordRoutes {
  uint32_t lane_word[256][8];
  WordRoutes() {
    for (unsigned m = 0; m < 256; ++m) {
      for (unsigned j = 0; j < 8; ++j) lane_word[m][j] = static_cast<uint32_t>(__builtin_popcount(m & ((1u << j) - 1)));
    }
  }
};

// The context of 8 lanes: clamp(bitlen(a >> h) - 3, 0, C - 1), bitlen from the binary32
// exponent of min(a >> h, 2^18) (exact: below 2^24; larger values are past every context).
UDC_TARGET_AVX2 inline __m256i ContextsAvx2(__m256i a, __m128i nshift, __m256i ctx_max) {
  const __m256i v = _mm256_min_epu32(_mm256_srl_epi32(a, nshift), _mm256_set1_epi32(1 << 18));
  const __m256i e = _mm256_srli_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(v)), 23);
  const __m256i c = _mm256_sub_epi32(e, _mm256_set1_epi32(129));  // exponent field - 129 = bitlen - 3
  return _mm256_min_epi32(_mm256_max_epi32(c, _mm256_setzero_si256()), ctx_max);
}

// Rounds r .. r_end - 1 (at most kVectorRounds) of 8 lanes that all have a symbol, the 8
// lanes of a round in the 8 u32 slots of one AVX2 vector, the same arithmetic as Step():
//   c = clamp(bitlen(a >> h) - 3, 0, C - 1)   bitlen from the binary32 exponent of
//                                             min(a >> h, 2^18) (exact: < 2^24)
//   entry = packed[c << n | x mod M] (gather) -> f, slot - cum, token
//   x = f (x >> n) + slot - cum; lanes below 2^16 take the next words in lane order
//   token -> (base, k - 2 extra bits); the 8 fields are consecutive in the extra-bit
//   stream: exclusive prefix sum of their lengths, a byte shuffle of one 16-byte window
//   s = base + extra;  a = a - (a >> h) + 16 ((s + 1) >> 1)   (s < 2^16: no clamp)
// The next round's context is known before the extra bits are: with extra = 0 and with
// extra = 2^nextra - 1, a is at its least and most, and the context is monotone in a; when
// the two contexts agree in every lane (nearly always) they are the context, so the next
// round's table lookup does not wait for the extra-bit arithmetic; otherwise it waits.
// Stops early (like Bulk) where a round's 16 word bytes or the window might not be there.
// Symbol (round r0 + i, lane j) goes to out[8 i + j]; returns the first round not decoded.
template <bool kContexts>
UDC_TARGET_AVX2 uint64_t BulkAvx2(uint32_t* x_io, uint32_t* a_io, const uint8_t*& w_io, const uint8_t* end,
                                  BitReader& extra, const uint32_t* packed, unsigned bits, unsigned shift,
                                  unsigned contexts, uint64_t r, uint64_t r_end, uint16_t* out) {
  static const WordRoutes routes;
  __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x_io));
  __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a_io));
  const uint8_t* w = w_io;
  uint64_t bp = extra.pos();
  const uint64_t extra_len = extra.len();
  const uint8_t* const bits_data = extra.data();
  const __m128i nbits = _mm_cvtsi32_si128(static_cast<int>(bits));
  const __m128i nshift = _mm_cvtsi32_si128(static_cast<int>(shift));
  const __m256i mask = _mm256_set1_epi32(static_cast<int>((1u << bits) - 1));
  const __m256i low12 = _mm256_set1_epi32(0xFFF);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i zero = _mm256_setzero_si256();
  const __m256i ctx_max = _mm256_set1_epi32(static_cast<int>(contexts) - 1);
  const __m256i direct_max = _mm256_set1_epi32(static_cast<int>(rans::kDirect) - 1);
  const __m256i byte_spread = _mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12,
                                               0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
  const __m256i byte_offsets = _mm256_set1_epi32(0x03020100);
  const __m256i lane3 = _mm256_set1_epi32(3);
  const uint64_t stop = r_end - r > kVectorRounds ? r + kVectorRounds : r_end;
  __m256i ctx = kContexts ? ContextsAvx2(a, nshift, ctx_max) : zero;  // of the round about to be decoded
  uint16_t* o = out;
  for (; r < stop; ++r, o += 8) {
    if (end - w < 16 || (bp >> 3) > extra_len) break;
    __m256i idx = _mm256_and_si256(x, mask);
    if (kContexts) idx = _mm256_or_si256(idx, _mm256_sll_epi32(ctx, nbits));
    const __m256i entry = _mm256_i32gather_epi32(reinterpret_cast<const int*>(packed), idx, 4);
    const __m256i f = _mm256_add_epi32(_mm256_and_si256(entry, low12), one);
    const __m256i bias = _mm256_and_si256(_mm256_srli_epi32(entry, 12), low12);
    const __m256i tok = _mm256_srli_epi32(entry, 24);
    const __m256i xn = _mm256_add_epi32(_mm256_mullo_epi32(f, _mm256_srl_epi32(x, nbits)), bias);
    // renormalisation: lanes with x < 2^16 read the next words, in lane order
    const __m256i need = _mm256_cmpeq_epi32(_mm256_srli_epi32(xn, 16), zero);
    const unsigned m = static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(need)));
    const __m256i words = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    const __m256i route = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(routes.lane_word[m]));
    const __m256i lane_words = _mm256_permutevar8x32_epi32(words, route);
    x = _mm256_blendv_epi8(xn, _mm256_or_si256(_mm256_slli_epi32(xn, 16), lane_words), need);
    w += 2 * __builtin_popcount(m);
    __m256i sym = tok;  // tokens below 32 are the symbols themselves
    const __m256i big = _mm256_cmpgt_epi32(tok, direct_max);
    const __m256i decay = kContexts ? _mm256_sub_epi32(a, _mm256_srl_epi32(a, nshift)) : zero;
    if (_mm256_testz_si256(big, big)) {  // no lane has extra bits (a branch: most rounds at coarse steps)
      if (kContexts) {
        a = _mm256_add_epi32(decay, _mm256_slli_epi32(_mm256_srli_epi32(_mm256_add_epi32(sym, one), 1), 4));
        ctx = ContextsAvx2(a, nshift, ctx_max);
      }
    } else {
      // (t - 32) / 4 + 3 = (t - 20) / 4 for t >= 32; 0 below
      const __m256i nextra = _mm256_and_si256(big, _mm256_srli_epi32(_mm256_sub_epi32(tok, _mm256_set1_epi32(20)), 2));
      const __m256i sub = _mm256_add_epi32(_mm256_and_si256(tok, _mm256_set1_epi32(3)), _mm256_set1_epi32(4));
      const __m256i base = _mm256_blendv_epi8(tok, _mm256_sllv_epi32(sub, nextra), big);
      const __m256i span = _mm256_sllv_epi32(one, nextra);  // 2^nextra: extra < span
      __m256i ctx_lo = ctx, ctx_hi = ctx;
      if (kContexts) {
        const __m256i lo = _mm256_add_epi32(decay, _mm256_slli_epi32(_mm256_srli_epi32(_mm256_add_epi32(base, one), 1), 4));
        const __m256i hi = _mm256_add_epi32(decay, _mm256_slli_epi32(_mm256_srli_epi32(_mm256_add_epi32(base, span), 1), 4));
        ctx_lo = ContextsAvx2(lo, nshift, ctx_max);
        ctx_hi = ContextsAvx2(hi, nshift, ctx_max);
      }
      // inclusive prefix sum of nextra over the 8 lanes
      __m256i p = _mm256_add_epi32(nextra, _mm256_slli_si256(nextra, 4));
      p = _mm256_add_epi32(p, _mm256_slli_si256(p, 8));
      p = _mm256_add_epi32(p, _mm256_blend_epi32(zero, _mm256_permutevar8x32_epi32(p, lane3), 0xF0));
      const __m256i at = _mm256_add_epi32(_mm256_sub_epi32(p, nextra), _mm256_set1_epi32(static_cast<int>(bp & 7)));
      const __m256i window =
          _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bits_data + (bp >> 3))));
      // byte offset (at / 8 < 16) copied into the 4 bytes of its slot, + 0, 1, 2, 3
      const __m256i ctrl = _mm256_add_epi8(_mm256_shuffle_epi8(_mm256_srli_epi32(at, 3), byte_spread), byte_offsets);
      const __m256i raw = _mm256_srlv_epi32(_mm256_shuffle_epi8(window, ctrl), _mm256_and_si256(at, _mm256_set1_epi32(7)));
      const __m256i ex = _mm256_and_si256(raw, _mm256_sub_epi32(span, one));
      sym = _mm256_add_epi32(base, ex);
      bp += static_cast<uint32_t>(_mm256_extract_epi32(p, 7));
      if (kContexts) {
        a = _mm256_add_epi32(decay, _mm256_slli_epi32(_mm256_srli_epi32(_mm256_add_epi32(sym, one), 1), 4));
        const __m256i differ = _mm256_xor_si256(ctx_lo, ctx_hi);
        ctx = _mm256_testz_si256(differ, differ) ? ctx_lo : ContextsAvx2(a, nshift, ctx_max);
      }
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o),
                     _mm_packus_epi32(_mm256_castsi256_si128(sym), _mm256_extracti128_si256(sym, 1)));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(x_io), x);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(a_io), a);
  w_io = w;
  extra.pos() = bp;
  return r;
}


// buf[8 i + j] (round r0 + i, lane j, i < rounds) -> planar bytes of symbol seg j + r0 + i:
// 8 rounds at a time as an 8 x 8 transpose of u16, then 8 bytes per lane and plane.
UDC_TARGET_AVX2 void FlushPlanar(const uint16_t* buf, uint64_t rounds, uint64_t r0, uint64_t seg,
                                 const PlanarTarget& t) {
  const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  uint64_t i = 0;
  for (; i + 8 <= rounds; i += 8) {
    __m128i row[8];
    for (unsigned k = 0; k < 8; ++k) row[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(buf + 8 * (i + k)));
    // 16-bit transpose: after it, row'[j] holds lane j's rounds i .. i + 7
    const __m128i a0 = _mm_unpacklo_epi16(row[0], row[1]), a1 = _mm_unpackhi_epi16(row[0], row[1]);
    const __m128i a2 = _mm_unpacklo_epi16(row[2], row[3]), a3 = _mm_unpackhi_epi16(row[2], row[3]);
    const __m128i a4 = _mm_unpacklo_epi16(row[4], row[5]), a5 = _mm_unpackhi_epi16(row[4], row[5]);
    const __m128i a6 = _mm_unpacklo_epi16(row[6], row[7]), a7 = _mm_unpackhi_epi16(row[6], row[7]);
    const __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
    const __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
    const __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
    const __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
    const __m128i lane[8] = {_mm_unpacklo_epi64(b0, b4), _mm_unpackhi_epi64(b0, b4), _mm_unpacklo_epi64(b1, b5),
                             _mm_unpackhi_epi64(b1, b5), _mm_unpacklo_epi64(b2, b6), _mm_unpackhi_epi64(b2, b6),
                             _mm_unpacklo_epi64(b3, b7), _mm_unpackhi_epi64(b3, b7)};
    for (unsigned j = 0; j < 8; ++j) {
      const __m128i bytes = _mm_shuffle_epi8(lane[j], split);  // low bytes, then high bytes
      uint8_t* at = t.out + seg * j + r0 + i;
      _mm_storel_epi64(reinterpret_cast<__m128i*>(at), bytes);
      if (t.width == 2) _mm_storel_epi64(reinterpret_cast<__m128i*>(at + t.numel), _mm_unpackhi_epi64(bytes, bytes));
    }
  }
  for (; i < rounds; ++i) {
    for (unsigned j = 0; j < 8; ++j) {
      const uint16_t v = buf[8 * i + j];
      t.out[seg * j + r0 + i] = static_cast<uint8_t>(v);
      if (t.width == 2) t.out[t.numel + seg * j + r0 + i] = static_cast<uint8_t>(v >> 8);
    }
  }
}

#undef UDC_TARGET_AVX2
#pragma GCC diagnostic pop
#endif  // __x86_64__

// kLanes: the lane count as a compile-time constant (0: s.lanes at run time), so the
// common payloads keep every lane's state in registers.
template <unsigned kLanes, bool kContexts, class Sink>
Status Run(const Stream& s, uint64_t numel, const PlanarTarget* planar, Sink&& sink) {
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
    const uint64_t full = length[kLanes - 1];  // rounds in which every lane has a symbol
#if defined(__x86_64__)
    if (kLanes == 8 && !s.packed.empty()) {
      uint16_t buf[kVectorRounds * 8];
      while (r < full) {
        const uint64_t r0 = r;
        r = BulkAvx2<kContexts>(x, a, w, end, extra, s.packed.data(), bits, shift, contexts, r0, full, buf);
        if (planar != nullptr) {
          FlushPlanar(buf, r - r0, r0, seg, *planar);
        } else {
          for (unsigned j = 0; j < 8; ++j) {
            for (uint64_t i = 0; i < r - r0; ++i) sink(seg * j + r0 + i, buf[8 * i + j]);
          }
        }
        if (r - r0 < kVectorRounds && r < full) break;  // near the streams' ends: the checked loop below
      }
    }
#else
    (void)planar;  // only the vector decoder stores planar bytes itself
#endif
    const Tables tables{entry, token, base, nextra, extra.data(), bits, mask, shift, contexts};
    r = Bulk<kLanes, kContexts>(x, a, w, end, extra, tables, seg, r, full, sink, std::make_index_sequence<kLanes>{});
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
Status RunLanes(const Stream& s, uint64_t numel, const PlanarTarget* planar, Sink&& sink) {
  switch (s.lanes) {  // the lane counts the encoder writes (rans_encoder.cc), unrolled
    case 8: return Run<8, kContexts>(s, numel, planar, sink);
    case 4: return Run<4, kContexts>(s, numel, planar, sink);
    case 1: return Run<1, kContexts>(s, numel, planar, sink);
    default: return Run<0, kContexts>(s, numel, planar, sink);
  }
}

template <class Sink>
Status DecodeStream(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned width,
                    const PlanarTarget* planar, Sink&& sink) {
  if (width != 1 && width != 2 && width != 4) {
    return Status(Code::kInvalidArgument, "symbol width must be 1, 2 or 4, got " + std::to_string(width));
  }
  if (payload == nullptr && payload_len != 0) return Status(Code::kInvalidArgument, "payload is NULL");
  Stream s;
  UDC_RETURN_IF_ERROR(Parse(payload, payload_len, width, &s));
  return s.contexts > 1 ? RunLanes<true>(s, numel, planar, sink) : RunLanes<false>(s, numel, planar, sink);
}

class Rans final : public Coder {
 public:
  const char* name() const override { return "rans"; }

  Status Decode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                ByteBuffer* scratch, const uint8_t** symbols) const override {
    return DecodePlanar(numel, symbol_width, scratch, symbols, [&](auto sink) {
      // the scratch is allocated before this runs: the vector decoder stores planar bytes itself
      const PlanarTarget planar{scratch->get(), numel, symbol_width};
      return DecodeStream(payload, payload_len, numel, symbol_width, symbol_width <= 2 ? &planar : nullptr, sink);
    });
  }
};

}  // namespace

Status RansDecode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                  uint32_t* out) {
  if (numel != 0 && out == nullptr) return Status(Code::kInvalidArgument, "out is NULL");
  return DecodeStream(payload, payload_len, numel, symbol_width, nullptr,
                      [out](uint64_t i, uint32_t s) { out[i] = s; });
}

const Coder& RansCoder() {
  static const Rans kRans;
  return kRans;
}

}  // namespace udc
