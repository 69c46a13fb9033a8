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

const Quantizer* FindQuantizer(uint8_t id) {
  for (const Entry& e : kQuantizers) {
    if (e.id == id) return &e.get();
  }
  return nullptr;
}

}  // namespace udc
