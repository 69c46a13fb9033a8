// Coder 1, brotli: one brotli stream (RFC 7932) that decodes to the symbol bytes.
//
// Streaming decode into a buffer of exactly the expected size; rejected: a stream that
// wants to produce more, ends before filling the buffer, is malformed or truncated, or
// leaves payload bytes unused.
#include <brotli/decode.h>

#include <memory>
#include <string>

#include "core/coders.h"

namespace udc {
namespace {

struct DecoderDeleter {
  void operator()(BrotliDecoderState* s) const { BrotliDecoderDestroyInstance(s); }
};

Status Corrupt(const std::string& what) { return Status(Code::kCorruptPayload, "brotli payload " + what); }

class Brotli final : public Coder {
 public:
  const char* name() const override { return "brotli"; }

  Status Decode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                ByteBuffer* scratch, const uint8_t** symbols) const override {
    const uint64_t expected = numel * symbol_width;
    if (expected > SIZE_MAX || payload_len > SIZE_MAX) {
      return Status(Code::kLimitExceeded, "symbol stream of " + std::to_string(expected) +
                                              " bytes does not fit this platform's address space");
    }
    std::unique_ptr<BrotliDecoderState, DecoderDeleter> state(
        BrotliDecoderCreateInstance(nullptr, nullptr, nullptr));
    if (!state) throw std::bad_alloc();

    scratch->reset(new uint8_t[expected ? expected : 1]);
    size_t avail_in = static_cast<size_t>(payload_len);
    const uint8_t* next_in = payload;
    size_t avail_out = static_cast<size_t>(expected);
    uint8_t* next_out = scratch->get();

    // Once the buffer is full, offer one spare byte: a stream that fills it has more output.
    uint8_t spare = 0;
    bool in_spare = false;
    for (int rounds = 0;; ++rounds) {
      const BrotliDecoderResult r =
          BrotliDecoderDecompressStream(state.get(), &avail_in, &next_in, &avail_out, &next_out, nullptr);
      if (in_spare && avail_out == 0) {
        return Corrupt("decodes to more than numel * symbol_width = " + std::to_string(expected) + " bytes");
      }
      switch (r) {
        case BROTLI_DECODER_RESULT_SUCCESS:
          if (!in_spare && avail_out != 0) {
            return Corrupt("ends after " + std::to_string(expected - avail_out) + " bytes, expected " +
                           std::to_string(expected));
          }
          if (avail_in != 0) {
            return Corrupt("stream ends with " + std::to_string(avail_in) + " of " + std::to_string(payload_len) +
                           " payload bytes unused");
          }
          *symbols = scratch->get();
          return Status::Ok();
        case BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:
          if (in_spare || avail_out != 0 || rounds > 2) {
            return Corrupt("decoder stalled (needs output with " + std::to_string(avail_out) + " bytes free)");
          }
          in_spare = true;
          next_out = &spare;
          avail_out = 1;
          break;
        case BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:
          return Corrupt("is truncated: stream incomplete after all " + std::to_string(payload_len) +
                         " bytes (" + std::to_string(in_spare ? expected : expected - avail_out) + " of " +
                         std::to_string(expected) + " bytes decoded)");
        case BROTLI_DECODER_RESULT_ERROR:
        default: {
          const BrotliDecoderErrorCode code = BrotliDecoderGetErrorCode(state.get());
          if (code == BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES || code == BROTLI_DECODER_ERROR_ALLOC_TREE_GROUPS ||
              code == BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MAP || code == BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_1 ||
              code == BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_2 || code == BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES) {
            throw std::bad_alloc();
          }
          return Corrupt(std::string("is malformed: ") + BrotliDecoderErrorString(code) + " at payload byte " +
                         std::to_string(payload_len - avail_in));
        }
      }
    }
  }
};

}  // namespace

const Coder& BrotliCoder() {
  static const Brotli kBrotli;
  return kBrotli;
}

}  // namespace udc
