// Coder 2, range (FORMAT.md section 5.2): the encoder (the decoder is in the core,
// core/coders/range.cc; both run range::CodeSymbol of core/coders/range_model.h).
//
//   symbols --CodeSymbol<Writer>--> bits --range coder--> bytes, flushed to the shortest
//   tail, trailing zero bytes dropped
#include "encode/range_encoder.h"

#include <string>

#include "core/coders/range_model.h"

namespace udc {
namespace {

using range::Bin;
using range::kProbHalf;
using range::kRangeTop;

bool ValidWidth(unsigned w) { return w == 1 || w == 2 || w == 4; }

class Writer {
 public:
  explicit Writer(std::vector<uint8_t>* out) : out_(out), start_(out->size()) {}

  int Bit(Bin& b, int bit) {
    Code(b.p, bit);
    range::Update(b, bit);
    return bit;
  }
  int Bypass(int bit) {
    Code(kProbHalf, bit);
    return bit;
  }

  // Shortest tail: the smallest multiple of 2^24 >= low lies in [low, low + range) since
  // range >= 2^24; then drop trailing zero bytes (the decoder reads zeros past the end).
  void Finish() {
    if (low_ != 0) {
      const uint64_t v = (low_ + 0xFFFFFF) & ~uint64_t{0xFFFFFF};
      if (v >> 32) {
        PropagateCarry();
      } else {
        out_->push_back(static_cast<uint8_t>(v >> 24));
      }
    }
    while (out_->size() > start_ && out_->back() == 0) out_->pop_back();
  }

 private:
  void Code(uint32_t p, int bit) {
    const uint32_t bound = (range_ >> 16) * p;
    if (bit) {
      range_ = bound;
    } else {
      low_ += bound;
      range_ -= bound;
      if (low_ >> 32) {
        PropagateCarry();
        low_ &= 0xFFFFFFFFu;
      }
    }
    while (range_ < kRangeTop) {
      out_->push_back(static_cast<uint8_t>(low_ >> 24));
      low_ = (low_ << 8) & 0xFFFFFFFFu;
      range_ <<= 8;
    }
  }
  void PropagateCarry() {
    size_t i = out_->size();
    while (i > start_ && (*out_)[i - 1] == 0xFF) (*out_)[--i] = 0;
    if (i > start_) ++(*out_)[i - 1];  // i == start_ cannot happen: the value stays below 1
  }

  std::vector<uint8_t>* out_;
  size_t start_;
  uint64_t low_ = 0;
  uint32_t range_ = 0xFFFFFFFFu;
};

// symbols -> the coded stream S appended to *payload (after its header), with context period p.
Status EncodeStream(const uint32_t* symbols, uint64_t numel, unsigned symbol_width, uint32_t period,
                    bool per_position, std::vector<uint8_t>* payload) {
  const uint64_t limit = uint64_t{1} << (8 * symbol_width);
  Writer writer(payload);
  range::Model model(period, per_position);
  const int max_class = 8 * static_cast<int>(symbol_width) - 1;
  for (uint64_t i = 0; i < numel; ++i) {
    if (symbols[i] >= limit) {
      return Status(Code::kInvalidArgument, "symbol " + std::to_string(i) + " = " + std::to_string(symbols[i]) +
                                                " does not fit " + std::to_string(symbol_width) + " byte(s)");
    }
    range::CodeSymbol(writer, model, symbols[i], max_class);
  }
  writer.Finish();
  return Status::Ok();
}

Status CheckEncodeArgs(const uint32_t* symbols, uint64_t numel, unsigned symbol_width, uint32_t period) {
  if (!ValidWidth(symbol_width)) return Status(Code::kInvalidArgument, "symbol width must be 1, 2 or 4");
  if (period == 0) return Status(Code::kInvalidArgument, "period must be >= 1");
  if (numel != 0 && symbols == nullptr) return Status(Code::kInvalidArgument, "symbols is NULL");
  return Status::Ok();
}

}  // namespace

Status RangeEncode(const uint32_t* symbols, uint64_t numel, unsigned symbol_width, uint32_t period,
                   std::vector<uint8_t>* payload) {
  UDC_RETURN_IF_ERROR(CheckEncodeArgs(symbols, numel, symbol_width, period));
  if (period > range::kMaxPeriod) period = range::kMaxPeriod;
  payload->clear();
  payload->reserve(static_cast<size_t>(numel * symbol_width / 2 + 16));
  payload->push_back(static_cast<uint8_t>(period));
  return EncodeStream(symbols, numel, symbol_width, period, false, payload);
}

Status RangeEncodeVariant(const uint32_t* symbols, uint64_t numel, unsigned symbol_width, uint32_t period,
                          unsigned variant, std::vector<uint8_t>* payload) {
  if (variant == range::kVariantWidePeriod && period <= range::kMaxPeriod) {
    return RangeEncode(symbols, numel, symbol_width, period, payload);
  }
  UDC_RETURN_IF_ERROR(CheckEncodeArgs(symbols, numel, symbol_width, period));
  if (variant != range::kVariantWidePeriod && variant != range::kVariantPositionModels) {
    return Status(Code::kInvalidArgument, "unknown range variant " + std::to_string(variant));
  }
  const bool per_position = variant == range::kVariantPositionModels;
  const uint32_t max_period = per_position ? range::kMaxPositionSets : range::kMaxWidePeriod;
  if (period > max_period) {
    return Status(Code::kInvalidArgument, "period " + std::to_string(period) + " is above " +
                                              std::to_string(max_period) + " for variant " + std::to_string(variant));
  }
  payload->clear();
  payload->reserve(static_cast<size_t>(numel * symbol_width / 2 + 16));
  payload->push_back(range::kExtendedEscape);
  payload->push_back(static_cast<uint8_t>(variant));
  for (uint32_t v = period;; v >>= 7) {  // little-endian base-128 varint
    if (v < 0x80) {
      payload->push_back(static_cast<uint8_t>(v));
      break;
    }
    payload->push_back(static_cast<uint8_t>(0x80 | (v & 0x7F)));
  }
  return EncodeStream(symbols, numel, symbol_width, period, per_position, payload);
}

}  // namespace udc
