// Coder 2, range (FORMAT.md section 5.2): adaptive binary models + a 32-bit range coder.
//
//   decode: payload[0] = period; bytes (zeros past the end) --CodeSymbol<Reader>--> symbols
//   (the encoder, CodeSymbol<Writer>, is src/encode/range_encoder.cc: not in the core)
//
// Untrusted input: every symbol is checked against the width, the loop is bounded by numel
// (at most 65 bits per symbol), bytes past the payload read as zero without touching memory,
// and the stream must end canonically: no trailing zero byte and no byte the decoder did not
// need (payload length <= bytes read - 3). Anything else is kCorruptPayload.
#include "core/coders/range.h"

#include <new>
#include <string>

#include "core/coders.h"
#include "core/coders/planar.h"
#include "core/coders/range_model.h"

namespace udc {
namespace {

using range::Bin;
using range::kProbHalf;
using range::kRangeTop;

class Reader {
 public:
  Reader(const uint8_t* data, uint64_t len) : data_(data), len_(len) {
    for (int i = 0; i < 4; ++i) code_ = (code_ << 8) | Next();
  }

  int Bit(Bin& b, int /*ignored*/) {
    const int bit = Code(b.p);
    range::Update(b, bit);
    return bit;
  }
  int Bypass(int /*ignored*/) { return Code(kProbHalf); }

  bool StartsInside() const { return code_ < range_; }
  uint64_t consumed() const { return pos_; }  // bytes read, zeros past the end included

 private:
  int Code(uint32_t p) {
    const uint32_t bound = (range_ >> 16) * p;
    int bit;
    if (code_ < bound) {
      range_ = bound;
      bit = 1;
    } else {
      code_ -= bound;
      range_ -= bound;
      bit = 0;
    }
    while (range_ < kRangeTop) {
      range_ <<= 8;
      code_ = (code_ << 8) | Next();
    }
    return bit;
  }
  uint32_t Next() { return pos_ < len_ ? data_[pos_++] : (++pos_, 0u); }

  const uint8_t* data_;
  uint64_t len_;
  uint64_t pos_ = 0;
  uint32_t code_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
};

Status Corrupt(const std::string& what) { return Status(Code::kCorruptPayload, "range payload " + what); }

bool ValidWidth(unsigned w) { return w == 1 || w == 2 || w == 4; }

// The payload header (FORMAT.md 5.2): a period byte 1..255, or the escape 0, the variant
// byte 1 and the period 1..2^20 as a little-endian base-128 varint of at most 3 bytes (no
// empty last group). Sets *period and *header_len, or returns kCorruptPayload.
Status ParseHeader(const uint8_t* payload, uint64_t payload_len, uint32_t* period, bool* per_position,
                   uint64_t* header_len) {
  *per_position = false;
  if (payload_len == 0) return Corrupt("is empty: the period byte is missing");
  if (payload[0] != range::kExtendedEscape) {
    *period = payload[0];
    *header_len = 1;
    return Status::Ok();
  }
  if (payload_len < 2) return Corrupt("ends inside the extended header");
  const uint8_t variant = payload[1];
  if (variant != range::kVariantWidePeriod && variant != range::kVariantPositionModels) {
    return Corrupt("has unknown variant " + std::to_string(variant));
  }
  uint32_t value = 0;
  uint64_t i = 2;
  for (int shift = 0;; shift += 7, ++i) {
    if (i >= payload_len) return Corrupt("ends inside the period varint");
    if (shift == 21) return Corrupt("has a period varint longer than 3 bytes");
    const uint8_t byte = payload[i];
    value |= static_cast<uint32_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) {
      if (byte == 0 && shift != 0) return Corrupt("has a period varint with an empty last group");
      break;
    }
  }
  if (value == 0 || value > range::kMaxWidePeriod) return Corrupt("has period " + std::to_string(value));
  *per_position = variant == range::kVariantPositionModels;
  if (*per_position && value > range::kMaxPositionSets) {
    return Corrupt("has period " + std::to_string(value) + " with a model set per position (at most 8)");
  }
  *period = value;
  *header_len = i + 1;
  return Status::Ok();
}

// Decodes numel symbols, handing each to sink(i, symbol).
template <class Sink>
Status DecodeStream(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned width, Sink&& sink) {
  if (!ValidWidth(width)) return Status(Code::kInvalidArgument, "symbol width must be 1, 2 or 4");
  uint32_t period = 0;
  bool per_position = false;
  uint64_t header_len = 0;
  UDC_RETURN_IF_ERROR(ParseHeader(payload, payload_len, &period, &per_position, &header_len));
  if (period == 0) return Corrupt("has period 0");
  const uint8_t* stream = payload + header_len;
  const uint64_t len = payload_len - header_len;
  if (numel == 0) {
    return len == 0 ? Status::Ok() : Corrupt("has " + std::to_string(len) + " stream bytes for 0 symbols");
  }
  if (len != 0 && stream[len - 1] == 0) return Corrupt("stream ends with a zero byte (not canonical)");
  Reader reader(stream, len);
  if (!reader.StartsInside()) return Corrupt("stream starts with ff ff ff ff");
  range::Model model(period, per_position);
  const int max_class = 8 * static_cast<int>(width) - 1;
  const uint64_t limit = uint64_t{1} << (8 * width);
  for (uint64_t i = 0; i < numel; ++i) {
    const uint64_t s = range::CodeSymbol(reader, model, 0, max_class);
    if (s >= limit) {
      return Corrupt("decodes symbol " + std::to_string(i) + " = " + std::to_string(s) + ", which does not fit " +
                     std::to_string(width) + " byte(s)");
    }
    sink(i, static_cast<uint32_t>(s));
  }
  if (len + 3 > reader.consumed()) {
    return Corrupt("has " + std::to_string(len + 3 - reader.consumed()) + " byte(s) after the end of the stream");
  }
  return Status::Ok();
}

class Range final : public Coder {
 public:
  const char* name() const override { return "range"; }

  Status Decode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                ByteBuffer* scratch, const uint8_t** symbols) const override {
    return DecodePlanar(numel, symbol_width, scratch, symbols, [&](auto sink) {
      return DecodeStream(payload, payload_len, numel, symbol_width, sink);
    });
  }
};

}  // namespace

Status RangeDecode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                   uint32_t* out) {
  if (numel != 0 && out == nullptr) return Status(Code::kInvalidArgument, "out is NULL");
  return DecodeStream(payload, payload_len, numel, symbol_width, [&](uint64_t i, uint32_t s) { out[i] = s; });
}

const Coder& RangeCoder() {
  static const Range kRange;
  return kRange;
}

}  // namespace udc
