// codewords.h - the shared-codeword table (FORMAT.md 4.6), read in place from the params.
//
//   u32 K, then K entries of (n x u32 key symbols, n x f32 values), little-endian;
//   keys strictly increasing in lexicographic order, values finite, K <= 2^16.
//
// Parse checks all of it before anything is allocated; Find is a binary search, so a
// decoder needs no copy of the table.
#ifndef UDC_CORE_QUANTIZERS_CODEWORDS_H_
#define UDC_CORE_QUANTIZERS_CODEWORDS_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "core/format.h"
#include "core/status.h"

namespace udc {

constexpr uint32_t kMaxCodewords = uint32_t{1} << 16;

class CodewordTable {
 public:
  CodewordTable() = default;

  // `len` bytes at `data` as a table of n-dimensional entries (n in 1..8).
  static Status Parse(const uint8_t* data, uint64_t len, int n, CodewordTable* out) {
    if (len < 4) {
      return Status(Code::kBadHeader, "codeword table has " + std::to_string(len) + " bytes, needs 4 for its count");
    }
    const uint32_t count = LoadU32(data);
    if (count > kMaxCodewords) {
      return Status(Code::kBadHeader, "codeword table has " + std::to_string(count) + " entries, at most " +
                                          std::to_string(kMaxCodewords) + " allowed");
    }
    const uint64_t need = 4 + uint64_t{count} * 8u * static_cast<uint64_t>(n);
    if (len != need) {
      return Status(Code::kBadHeader, "codeword table of " + std::to_string(count) + " entries of dimension " +
                                          std::to_string(n) + " needs " + std::to_string(need) + " bytes, has " +
                                          std::to_string(len));
    }
    CodewordTable t(data + 4, count, n);
    for (uint32_t e = 0; e < count; ++e) {
      for (int j = 0; j < n; ++j) {
        if (!std::isfinite(t.Value(e, j))) {
          return Status(Code::kBadHeader, "codeword table entry " + std::to_string(e) + " holds a non-finite value");
        }
      }
      if (e > 0 && t.CompareKey(e - 1, t.Key(e)) >= 0) {
        return Status(Code::kBadHeader,
                      "codeword table keys are not strictly increasing at entry " + std::to_string(e));
      }
    }
    *out = t;
    return Status::Ok();
  }

  // The same view without checks: only for bytes Parse accepted.
  static CodewordTable View(const uint8_t* data, int n) { return CodewordTable(data + 4, LoadU32(data), n); }

  uint32_t size() const { return count_; }

  // The entry whose key equals key[0..n), or -1.
  int64_t Find(const uint32_t* key) const {
    int64_t lo = 0, hi = static_cast<int64_t>(count_) - 1;
    while (lo <= hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      const int c = CompareKey(static_cast<uint32_t>(mid), key);
      if (c == 0) return mid;
      if (c < 0) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  }

  float Value(uint64_t entry, int j) const { return LoadF32(Entry(entry) + 4 * (n_ + j)); }

 private:
  CodewordTable(const uint8_t* entries, uint32_t count, int n) : entries_(entries), count_(count), n_(n) {}

  const uint8_t* Entry(uint64_t e) const { return entries_ + e * 8u * static_cast<uint64_t>(n_); }
  const uint8_t* Key(uint64_t e) const { return Entry(e); }

  // Entry e's key against key[0..n) (u32 each): -1, 0 or 1.
  int CompareKey(uint32_t e, const uint32_t* key) const {
    const uint8_t* k = Key(e);
    for (int j = 0; j < n_; ++j) {
      const uint32_t a = LoadU32(k + 4 * j);
      if (a != key[j]) return a < key[j] ? -1 : 1;
    }
    return 0;
  }
  int CompareKey(uint32_t e, const uint8_t* other) const {
    uint32_t key[8];
    for (int j = 0; j < n_; ++j) key[j] = LoadU32(other + 4 * j);
    return CompareKey(e, key);
  }

  const uint8_t* entries_ = nullptr;
  uint32_t count_ = 0;
  int n_ = 1;
};

}  // namespace udc

#endif  // UDC_CORE_QUANTIZERS_CODEWORDS_H_
