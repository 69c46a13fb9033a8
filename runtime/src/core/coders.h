// coders.h - the lossless coder strategy interface and its registry (FORMAT.md section 5).
//
// A coder turns the L payload bytes into the numel symbols of symbol_width bytes each, as
// planar bytes (FORMAT.md section 3: byte k of symbol i at k * numel + i). The
// registry maps the header's coder id to one strategy object; adding a coder is one new
// file under coders/ plus one line in the table of coders.cc.
#ifndef UDC_CORE_CODERS_H_
#define UDC_CORE_CODERS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace udc {

// Uninitialised byte buffer (no zero fill of large allocations).
using ByteBuffer = std::unique_ptr<uint8_t[]>;

class Coder {
 public:
  virtual ~Coder() = default;
  virtual const char* name() const = 0;

  // Produces exactly numel * symbol_width planar bytes from payload[0, payload_len),
  // consuming all of it; symbol_width is 1, 2 or 4 and numel * symbol_width was checked
  // against the limits. On success *symbols points at the bytes: either into the payload
  // itself (no copy) or into *scratch, which the coder then allocates with exactly
  // numel * symbol_width bytes. kCorruptPayload when the payload is malformed, decodes to
  // fewer or more symbols (or a symbol wider than symbol_width), or is not used entirely.
  // std::bad_alloc may escape.
  virtual Status Decode(const uint8_t* payload, uint64_t payload_len, uint64_t numel, unsigned symbol_width,
                        ByteBuffer* scratch, const uint8_t** symbols) const = 0;
};

// The strategy registered for `id`, or nullptr for an unknown id.
const Coder* FindCoder(uint8_t id);
// "0 store, 1 brotli, 2 range": the registered ids and names, for messages.
std::string KnownCoders();

}  // namespace udc

#endif  // UDC_CORE_CODERS_H_
