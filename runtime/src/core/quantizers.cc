#include "core/quantizers.h"

namespace udc {

// One line per quantizer: its id (FORMAT.md section 4) and the function returning it.
const Quantizer& RawQuantizer();             // quantizers/raw.cc
const Quantizer& DitheredScalarQuantizer();  // quantizers/dithered_scalar.cc
const Quantizer& LatticeA2Quantizer();       // quantizers/a2.cc
const Quantizer& LatticeD4Quantizer();       // quantizers/d4.cc
const Quantizer& LatticeE8Quantizer();       // quantizers/e8.cc
const Quantizer& PQQuantizer();              // quantizers/pq.cc

namespace {

struct Entry {
  uint8_t id;
  const Quantizer& (*get)();
};

constexpr Entry kQuantizers[] = {
    {0, &RawQuantizer},
    {1, &DitheredScalarQuantizer},
    {2, &LatticeA2Quantizer},
    {3, &LatticeD4Quantizer},
    {4, &LatticeE8Quantizer},
    {5, &PQQuantizer},
};

}  // namespace

Status CheckFloatDType(const Header& h, const std::string& who) {
  if (h.dtype != static_cast<uint8_t>(DType::kFloat) && h.dtype != static_cast<uint8_t>(DType::kFloat16)) {
    return Status(Code::kBadHeader, "dtype " + std::to_string(h.dtype) + " (" + DTypeName(h.dtype) +
                                        ") is not allowed by " + who + " (FLOAT(1), FLOAT16(10))");
  }
  return Status::Ok();
}

Status CheckSymbolWidth(const Header& h) {
  if (h.symbol_width != 1 && h.symbol_width != 2 && h.symbol_width != 4) {
    return Status(Code::kBadHeader, "symbol_width is " + std::to_string(h.symbol_width) + ", must be 1, 2 or 4");
  }
  return Status::Ok();
}

const Quantizer* FindQuantizer(uint8_t id) {
  for (const Entry& e : kQuantizers) {
    if (e.id == id) return &e.get();
  }
  return nullptr;
}

}  // namespace udc
