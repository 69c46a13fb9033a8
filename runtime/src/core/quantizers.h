// quantizers.h - the quantizer strategy interface and its registry (FORMAT.md section 4).
//
// A quantizer turns the planar symbol bytes into elements of the blob's dtype. The
// registry maps the header's quantizer id to one strategy object. Every quantizer is one
// line of quantizers/list.h (id, name, factory, device work item): the registry, the
// reconstruction kinds of core/reconstruct.h and the "known ids" message follow from it.
#ifndef UDC_CORE_QUANTIZERS_H_
#define UDC_CORE_QUANTIZERS_H_

#include <cstdint>
#include <string>

#include "core/format.h"
#include "core/options.h"
#include "core/status.h"

namespace udc {

struct ReconPlan;  // core/reconstruct.h

class Quantizer {
 public:
  virtual ~Quantizer() = default;

  // Checks the quantizer-specific header fields: dtype, symbol width, step, seed and
  // params. Returns kBadHeader naming the field; called before any allocation.
  virtual Status Validate(const Header& h) const = 0;

  // Symbols in the payload: h.numel for quantizers with one symbol per element (the
  // default); pq has one per block. Only called after Validate succeeded; <= h.numel.
  virtual uint64_t SymbolCount(const Header& h) const { return h.numel; }

  // Checks the decoded symbols (SymbolCount(h) planar symbols) when some symbol values are
  // invalid (pq: an index >= k): kCorruptPayload. Called before Dequantize.
  virtual Status CheckSymbols(const Header& /*h*/, const uint8_t* /*symbols*/) const { return Status::Ok(); }

  // symbols: SymbolCount(h) * h.symbol_width planar bytes. out: h.numel elements of h.dtype
  // (h.element_bytes() bytes, no alignment required). Only called after Validate
  // succeeded; cannot fail. Bit-identical for any opt.max_threads.
  virtual void Dequantize(const Header& h, const uint8_t* symbols, uint8_t* out,
                          const DecodeOptions& opt) const = 0;

  // The same dequantization as independent units of work (core/reconstruct.h), for the
  // CUDA decoder: ReconstructUnit over the plan's units writes exactly Dequantize's bytes.
  // The plan's kind is the header's quantizer id (BasePlan). Only called after Validate
  // succeeded; cannot fail.
  virtual void Plan(const Header& h, ReconPlan* plan) const = 0;
};

// The strategy registered for `id` (quantizers/list.h), or nullptr for an unknown id.
const Quantizer* FindQuantizer(uint8_t id);
// Its name ("raw", "a2", ...), "?" for an unknown id.
const char* QuantizerName(uint8_t id);
// "0 raw, 1 dithered_scalar, ...": the registered ids and names, for messages.
std::string KnownQuantizers();

// Checks shared by the Validate of several quantizers (kBadHeader naming the field):
// dtype FLOAT or FLOAT16 ("... is not allowed by <who> (FLOAT(1), FLOAT16(10))"), and a
// symbol width of 1, 2 or 4.
Status CheckFloatDType(const Header& h, const std::string& who);
Status CheckSymbolWidth(const Header& h);

}  // namespace udc

#endif  // UDC_CORE_QUANTIZERS_H_
