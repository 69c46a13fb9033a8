#include "core/quantizers.h"

#include "core/quantizers/lattice.h"  // lattice::Strategy<G>, the lattices' factories
#include "core/quantizers/list.h"

namespace udc {
namespace {

struct Entry {
  uint8_t id;
  const char* name;
  const Quantizer& (*get)();
};

// The registry: one entry per line of quantizers/list.h.
#define UDC_QUANTIZER_ENTRY(id, Kind, name, factory, Unit) {id, name, &factory},
constexpr Entry kQuantizers[] = {UDC_QUANTIZERS(UDC_QUANTIZER_ENTRY)};
#undef UDC_QUANTIZER_ENTRY

// Ids are unique (and, by construction of Recon, each is its kind's value).
constexpr bool UniqueIds() {
  constexpr size_t n = sizeof kQuantizers / sizeof kQuantizers[0];
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      if (kQuantizers[i].id == kQuantizers[j].id) return false;
    }
  }
  return true;
}
static_assert(UniqueIds(), "quantizers/list.h: two quantizers share an id");

const Entry* FindEntry(uint8_t id) {
  for (const Entry& e : kQuantizers) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

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
  const Entry* e = FindEntry(id);
  return e ? &e->get() : nullptr;
}

const char* QuantizerName(uint8_t id) {
  const Entry* e = FindEntry(id);
  return e ? e->name : "?";
}

std::string KnownQuantizers() {
  std::string known;
  for (const Entry& e : kQuantizers) {
    if (!known.empty()) known += ", ";
    known += std::to_string(e.id) + " " + e.name;
  }
  return known;
}

}  // namespace udc
