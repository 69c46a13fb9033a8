// Coder 0, store: the payload is the symbol bytes themselves (L = numel * symbol_width).
#include <string>

#include "core/coders.h"

namespace udc {
namespace {

class Store final : public Coder {
 public:
  const char* name() const override { return "store"; }

  Status Decode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                ByteBuffer* /*scratch*/, const uint8_t** symbols) const override {
    const uint64_t expected = numel * symbol_width;
    if (payload_len != expected) {
      return Status(Code::kCorruptPayload, "store payload_len is " + std::to_string(payload_len) +
                                               ", must equal numel * symbol_width = " + std::to_string(expected));
    }
    *symbols = payload;
    return Status::Ok();
  }
};

}  // namespace

const Coder& StoreCoder() {
  static const Store kStore;
  return kStore;
}

}  // namespace udc
