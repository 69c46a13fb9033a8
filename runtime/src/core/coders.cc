#include "core/coders.h"

#include <string>

namespace udc {

// One line per coder: its id (FORMAT.md section 5) and the function returning it.
const Coder& StoreCoder();   // coders/store.cc
const Coder& BrotliCoder();  // coders/brotli.cc
const Coder& RangeCoder();   // coders/range.cc
const Coder& RansCoder();    // coders/rans.cc

namespace {

struct Entry {
  uint8_t id;
  const Coder& (*get)();
};

constexpr Entry kCoders[] = {
    {0, &StoreCoder},
    {1, &BrotliCoder},
    {2, &RangeCoder},
    {3, &RansCoder},
};

}  // namespace

const Coder* FindCoder(uint8_t id) {
  for (const Entry& e : kCoders) {
    if (e.id == id) return &e.get();
  }
  return nullptr;
}

std::string KnownCoders() {
  std::string known;
  for (const Entry& e : kCoders) {
    if (!known.empty()) known += ", ";
    known += std::to_string(e.id) + " " + e.get().name();
  }
  return known;
}

}  // namespace udc
