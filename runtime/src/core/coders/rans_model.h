// rans_model.h - coder 3 ("rans", FORMAT.md section 5.3): the parts of the syntax that the
// encoder and the decoder share, written ONCE so they cannot drift.
//
//   symbol s (u32) --Tokenize--> token t (< 140) + ExtraBits(t) raw bits
//     t = s                                    for s < 32
//     t = 32 + 4 (k - 5) + next two bits       for s >= 32, k = floor(log2 s); the k - 2 bits
//                                              below those go to the extra-bit stream
//   context c = min(max(bitlen(A >> shift) - 3, 0), contexts - 1), A per lane:
//     A = A - (A >> shift) + 16 * min(mag, 2^16), mag = (s >> 1) + (s & 1)
//   rANS: 32-bit state x in [2^16, 2^32), 16-bit words, M = 2^prob_bits,
//     decode: slot = x mod M; t = token of slot; x = f_t (x >> prob_bits) + slot - cum_t;
//             if x < 2^16: x = (x << 16) | next word
//   lanes: the symbols split into `lanes` contiguous segments of ceil(numel / lanes), each
//   with its own state x and context state A, decoded round by round (symbol r of every
//   lane, lanes in order), sharing one word stream and one extra-bit stream.
#ifndef UDC_CORE_CODERS_RANS_MODEL_H_
#define UDC_CORE_CODERS_RANS_MODEL_H_

#include <cstdint>

namespace udc {
namespace rans {

constexpr uint32_t kStateLow = uint32_t{1} << 16;  // x in [kStateLow, 2^32) between symbols
constexpr uint8_t kVariant = 1;                     // payload[0]
constexpr unsigned kDirect = 32;                    // tokens 0..31 are the symbols themselves
constexpr unsigned kMaxTokens = 140;                // kTokenCount(4)
constexpr unsigned kMaxLanes = 32;
constexpr unsigned kMaxContexts = 16;
constexpr unsigned kMinProbBits = 8;
constexpr unsigned kMaxProbBits = 15;
constexpr unsigned kMinShift = 1;
constexpr unsigned kMaxShift = 8;
constexpr unsigned kHeaderBytes = 5;  // variant, lanes, prob_bits, contexts, shift
constexpr uint32_t kMagClamp = uint32_t{1} << 16;

inline unsigned BitLen(uint32_t v) { return v ? 32u - static_cast<unsigned>(__builtin_clz(v)) : 0u; }

// Tokens a symbol of `width` bytes can have: kDirect + 4 per class k = 5 .. 8*width - 1.
constexpr unsigned TokenCount(unsigned width) { return kDirect + 4 * (8 * width - 5); }

constexpr unsigned ExtraBits(unsigned token) { return token < kDirect ? 0u : (token - kDirect) / 4 + 3; }

struct Token {
  unsigned token;
  unsigned nextra;
  uint32_t extra;
};

inline Token Tokenize(uint32_t s) {
  if (s < kDirect) return {s, 0, 0};
  const unsigned k = BitLen(s) - 1;  // >= 5
  const unsigned nextra = k - 2;
  return {kDirect + 4 * (k - 5) + ((s >> nextra) & 3u), nextra, s & ((uint32_t{1} << nextra) - 1)};
}

// token (>= kDirect), its ExtraBits(token) raw bits -> the symbol.
inline uint32_t Detokenize(unsigned token, uint32_t extra) {
  const unsigned k = (token - kDirect) / 4 + 5;
  const uint32_t sub = (token - kDirect) & 3u;
  return (uint32_t{1} << k) | (sub << (k - 2)) | extra;
}

inline unsigned Context(uint32_t a, unsigned shift, unsigned contexts) {
  const unsigned b = BitLen(a >> shift);
  const unsigned c = b > 3 ? b - 3 : 0;
  return c < contexts ? c : contexts - 1;
}

// A after a symbol s; A stays below 2^(20 + shift) <= 2^28.
inline uint32_t UpdateContext(uint32_t a, unsigned shift, uint32_t s) {
  uint32_t mag = (s >> 1) + (s & 1u);
  if (mag > kMagClamp) mag = kMagClamp;
  return a - (a >> shift) + 16u * mag;
}

// Lane geometry: lane j covers [j * seg, j * seg + LaneLength(j)).
inline uint64_t SegmentLength(uint64_t numel, unsigned lanes) { return (numel + lanes - 1) / lanes; }
inline uint64_t LaneLength(uint64_t numel, uint64_t seg, unsigned lane) {
  const uint64_t start = seg * lane;
  if (start >= numel) return 0;
  return numel - start < seg ? numel - start : seg;
}

}  // namespace rans
}  // namespace udc

#endif  // UDC_CORE_CODERS_RANS_MODEL_H_
