// udc_core_tests - unit tests of the decoding core and the C API (no onnxruntime, no Python).
//
// Expected numbers were computed independently with Python/numpy (SplitMix64 in Python
// ints, numpy float32 arithmetic, numpy astype(float16), zlib.crc32, brotli.compress).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "core/coders/range.h"
#include "core/coders/rans.h"
#include "core/decode.h"
#include "core/dither.h"
#include "core/format.h"
#include "core/half.h"
#include "core/simd.h"
#include "encode/range_encoder.h"
#include "encode/rans_encoder.h"
#include "onnx_udc.h"

namespace {

int g_failures = 0;
int g_checks = 0;

#define CHECK(cond)                                                           \
  do {                                                                        \
    ++g_checks;                                                               \
    if (!(cond)) {                                                            \
      ++g_failures;                                                           \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
    }                                                                         \
  } while (0)

#define CHECK_EQ_U(a, b)                                                                          \
  do {                                                                                            \
    ++g_checks;                                                                                   \
    const unsigned long long va_ = static_cast<unsigned long long>(a);                            \
    const unsigned long long vb_ = static_cast<unsigned long long>(b);                            \
    if (va_ != vb_) {                                                                             \
      ++g_failures;                                                                               \
      std::fprintf(stderr, "%s:%d: %s == %s failed: 0x%llx vs 0x%llx\n", __FILE__, __LINE__, #a, #b, va_, vb_); \
    }                                                                                             \
  } while (0)

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ---- a tiny blob writer (tests only) -------------------------------------------------
struct BlobSpec {
  uint16_t version = 1;
  uint8_t quantizer = 0, coder = 0, dtype = 2, symbol_width = 1, flags = 0;
  std::vector<uint64_t> shape;
  float step = 0.0f;
  uint64_t seed = 0;
  std::vector<uint8_t> params, payload;
  int64_t ndim_override = -1;
};

void Put(std::vector<uint8_t>& b, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void FixChecksum(std::vector<uint8_t>& b) {
  const uint32_t crc = udc::BlobChecksum(b.data(), b.size());
  for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<uint8_t>(crc >> (8 * i));
}

std::vector<uint8_t> MakeBlob(const BlobSpec& s) {
  std::vector<uint8_t> b = {0x55, 0x44, 0x43, 0x42};
  Put(b, s.version, 2);
  b.push_back(s.quantizer);
  b.push_back(s.coder);
  b.push_back(s.dtype);
  b.push_back(static_cast<uint8_t>(s.ndim_override >= 0 ? s.ndim_override : static_cast<int64_t>(s.shape.size())));
  b.push_back(s.symbol_width);
  b.push_back(s.flags);
  Put(b, 0, 4);
  Put(b, FloatBits(s.step), 4);
  Put(b, s.params.size(), 4);
  Put(b, s.seed, 8);
  Put(b, s.payload.size(), 8);
  for (uint64_t d : s.shape) Put(b, d, 8);
  b.insert(b.end(), s.params.begin(), s.params.end());
  b.insert(b.end(), s.payload.begin(), s.payload.end());
  FixChecksum(b);
  return b;
}

udc::Code DecodeCode(const std::vector<uint8_t>& blob, size_t out_len, std::vector<uint8_t>* out = nullptr,
                     int threads = 0) {
  std::vector<uint8_t> local(out_len);
  std::vector<uint8_t>& buf = out ? *out : local;
  buf.assign(out_len, 0xAB);
  udc::DecodeOptions opt;
  opt.max_threads = threads;
  return udc::Decode(blob.data(), blob.size(), buf.data(), out_len, opt).code();
}

// The blob decodes, and to the same bytes on 1 and 4 threads.
void CheckThreadsAgree(const std::vector<uint8_t>& blob, size_t nbytes) {
  std::vector<uint8_t> a, b;
  CHECK(DecodeCode(blob, nbytes, &a, 1) == udc::Code::kOk);
  CHECK(DecodeCode(blob, nbytes, &b, 4) == udc::Code::kOk);
  CHECK(a == b);
}

// ---- tests ---------------------------------------------------------------------------
void TestCrc32() {
  const char* s = "123456789";
  const auto* p = reinterpret_cast<const uint8_t*>(s);
  CHECK_EQ_U(udc::Crc32(p, 9), 0xCBF43926u);
  CHECK_EQ_U(udc::Crc32(p + 5, 4, udc::Crc32(p, 5)), 0xCBF43926u);
  CHECK_EQ_U(udc::Crc32(p, 0), 0u);
  std::vector<uint8_t> big(1000);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7 + 3);
  uint32_t chained = 0;
  for (size_t i = 0; i < big.size(); i += 13) chained = udc::Crc32(big.data() + i, std::min<size_t>(13, big.size() - i), chained);
  CHECK_EQ_U(chained, udc::Crc32(big.data(), big.size()));
}

void TestZigzag() {
  const int32_t expect[] = {0, -1, 1, -2, 2, -3, 3};
  for (uint32_t s = 0; s < 7; ++s) CHECK(udc::ZigzagDecode(s) == expect[s]);
  CHECK(udc::ZigzagDecode(0xFFFFFFFFu) == std::numeric_limits<int32_t>::min());
  CHECK(udc::ZigzagDecode(0xFFFFFFFEu) == std::numeric_limits<int32_t>::max());
  for (int32_t q : {0, 1, -1, 127, -128, 32767, -32768, 123456789, std::numeric_limits<int32_t>::min()}) {
    CHECK(udc::ZigzagDecode(udc::ZigzagEncode(q)) == q);
  }
}

void TestDither() {
  // numpy: d = np.float32(x >> 40) * np.float32(2**-24) - np.float32(0.5)
  const uint64_t x0[] = {0xe220a8397b1dcdafull, 0x6e789e6aa1b965f4ull, 0x06c45d188009454full, 0xf88bb8a8724c81ecull};
  const uint32_t d0[] = {0x3ec44150u, 0xbd8c3b10u, 0xbef27746u, 0x3ef11770u};  // 0.3833108 -0.06847203 -0.47356623 0.47088194
  const uint32_t d12345[] = {0xbebbdcfcu, 0xbe972248u, 0xbec2cb52u, 0xbea5d3e4u};
  for (uint64_t i = 0; i < 4; ++i) {
    const float d = udc::Dither(0, i);
    std::printf("dither seed=0 i=%llu: x=0x%016llx d=%.9g (0x%08x)\n", static_cast<unsigned long long>(i),
                static_cast<unsigned long long>(udc::SplitMix64At(0, i)), static_cast<double>(d), FloatBits(d));
    CHECK_EQ_U(udc::SplitMix64At(0, i), x0[i]);
    CHECK_EQ_U(FloatBits(d), d0[i]);
    CHECK_EQ_U(FloatBits(udc::Dither(12345, i)), d12345[i]);
  }
  // Range: [-0.5, 0.5).
  for (uint64_t i = 0; i < 100000; ++i) {
    const float d = udc::Dither(0xDEADBEEFull, i);
    if (!(d >= -0.5f && d < 0.5f)) { CHECK(false); break; }
  }
}

void TestHalf() {
  struct Case { uint32_t f; uint16_t h; };
  // Pairs (float32 bits, numpy astype(float16) bits).
  const Case cases[] = {
      {0x00000000, 0x0000}, {0x80000000, 0x8000}, {0x3f800000, 0x3c00}, {0xbf800000, 0xbc00},
      {0x477fe000, 0x7bff},  // 65504, the largest half
      {0x477feffd, 0x7bff},  // 65519.99 rounds down
      {0x477ff000, 0x7c00},  // 65520: tie between 65504 (odd) and 65536 -> inf
      {0xc77ff000, 0xfc00}, {0x501502f9, 0x7c00}, {0x7f800000, 0x7c00}, {0xff800000, 0xfc00},
      {0x38800000, 0x0400},  // 2^-14, smallest normal
      {0x33800000, 0x0001},  // 2^-24, smallest subnormal
      {0x33000000, 0x0000},  // 2^-25: tie -> even (0)
      {0x33000001, 0x0001},  // just above 2^-25
      {0xb3000000, 0x8000},  // -2^-25 -> -0
      {0x32800000, 0x0000}, {0x33c00000, 0x0002},  // 1.5 * 2^-24 -> tie -> 2
      {0x34200000, 0x0002},  // 2.5 * 2^-24 -> tie -> 2
      {0x3f801000, 0x3c00},  // 1 + 2^-11: tie -> even
      {0x3f803000, 0x3c02},  // 1 + 3 * 2^-11: tie -> even (up)
      {0x3f801008, 0x3c01},  // just above the tie
      {0x3dcccccd, 0x2e66}, {0xbeaa7efa, 0xb554},
      {0x387fda40, 0x03ff},  // 6.1e-05: largest subnormal
      {0x3380d959, 0x0001}, {0x322bcc77, 0x0000}, {0x45001000, 0x6800}, {0x45003000, 0x6802},
      {0x477fe100, 0x7bff}, {0x38000000, 0x0200},
  };
  for (const Case& c : cases) {
    const uint16_t h = udc::FloatToHalfBits(BitsFloat(c.f));
    if (h != c.h) std::fprintf(stderr, "half(0x%08x) = 0x%04x, numpy 0x%04x\n", c.f, h, c.h);
    CHECK_EQ_U(h, c.h);
  }
  // NaNs as numpy: payload top bits kept, never turned into inf.
  CHECK_EQ_U(udc::FloatToHalfBits(BitsFloat(0x7fc00000)), 0x7e00u);
  CHECK_EQ_U(udc::FloatToHalfBits(BitsFloat(0x7f800001)), 0x7c01u);
  CHECK_EQ_U(udc::FloatToHalfBits(BitsFloat(0xffa00000)), 0xfd00u);
}

void TestDecodeGood() {
  // Raw INT8, store, shape [2, 3].
  BlobSpec s;
  s.dtype = 3;
  s.shape = {2, 3};
  s.payload = {1, 2, 3, 0xFF, 0x80, 0x7F};
  std::vector<uint8_t> blob = MakeBlob(s), out;
  CHECK(DecodeCode(blob, 6, &out) == udc::Code::kOk);
  CHECK(out == s.payload);

  // Raw FLOAT, store: planar bytes -> little-endian floats.
  s = BlobSpec();
  s.dtype = 1;
  s.symbol_width = 4;
  s.shape = {2};
  const float vals[2] = {1.5f, -2.25f};
  uint32_t u[2] = {FloatBits(vals[0]), FloatBits(vals[1])};
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i) s.payload.push_back(static_cast<uint8_t>(u[i] >> (8 * k)));
  blob = MakeBlob(s);
  CHECK(DecodeCode(blob, 8, &out) == udc::Code::kOk);
  CHECK(std::memcmp(out.data(), vals, 8) == 0);

  // Raw UINT8, brotli: payload = brotli.compress(bytes([0, 1, 2, 3, 4, 5])).
  s = BlobSpec();
  s.coder = 1;
  s.shape = {6};
  s.payload = {0x8b, 0x02, 0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x03};
  blob = MakeBlob(s);
  CHECK(DecodeCode(blob, 6, &out) == udc::Code::kOk);
  CHECK((out == std::vector<uint8_t>{0, 1, 2, 3, 4, 5}));

  // Raw UINT8, brotli, 64 zeros in 11 bytes.
  s.shape = {64};
  s.payload = {0x1b, 0x3f, 0x00, 0xf8, 0x27, 0x00, 0xe2, 0x8c, 0x00, 0xc0, 0x00};
  blob = MakeBlob(s);
  CHECK(DecodeCode(blob, 64, &out) == udc::Code::kOk);
  CHECK(out == std::vector<uint8_t>(64, 0));

  // Dithered FLOAT and FLOAT16, width 1, seed 0, step 0.5, q = [0, -1, 1, -2] (numpy values).
  for (uint8_t dtype : {uint8_t{1}, uint8_t{10}}) {
    s = BlobSpec();
    s.quantizer = 1;
    s.dtype = dtype;
    s.shape = {4};
    s.step = 0.5f;
    s.payload = {0, 1, 2, 3};
    blob = MakeBlob(s);
    if (dtype == 1) {
      CHECK(DecodeCode(blob, 16, &out) == udc::Code::kOk);
      const uint32_t expect[] = {0xbe444150u, 0xbeee789eu, 0x3f3c9dd2u, 0xbf9e22eeu};
      CHECK(std::memcmp(out.data(), expect, 16) == 0);
    } else {
      CHECK(DecodeCode(blob, 8, &out) == udc::Code::kOk);
      const uint16_t expect[] = {0xb222, 0xb774, 0x39e5, 0xbcf1};
      CHECK(std::memcmp(out.data(), expect, 8) == 0);
    }
  }

  // Dithered FLOAT, width 4, seed 12345, step float32(1e-3), q = [1000, -70000, 3, 0].
  s = BlobSpec();
  s.quantizer = 1;
  s.dtype = 1;
  s.symbol_width = 4;
  s.shape = {2, 2};
  s.step = BitsFloat(0x3a83126fu);
  s.seed = 12345;
  const int32_t q[] = {1000, -70000, 3, 0};
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 4; ++i) s.payload.push_back(static_cast<uint8_t>(udc::ZigzagEncode(q[i]) >> (8 * k)));
  blob = MakeBlob(s);
  CHECK(DecodeCode(blob, 16, &out) == udc::Code::kOk);
  const uint32_t expect4[] = {0x3f800c07u, 0xc28bffdau, 0x3b5d8aabu, 0x39a9cebdu};
  CHECK(std::memcmp(out.data(), expect4, 16) == 0);

  // Scalar (ndim 0): one element.
  s = BlobSpec();
  s.payload = {42};
  blob = MakeBlob(s);
  CHECK(DecodeCode(blob, 1, &out) == udc::Code::kOk);
  CHECK(out[0] == 42);

  // Empty tensor (a zero dimension), store and brotli (brotli.compress(b"") = 3b).
  s = BlobSpec();
  s.shape = {3, 0, uint64_t{1} << 40};
  blob = MakeBlob(s);
  CHECK(DecodeCode(blob, 0) == udc::Code::kOk);
  s.coder = 1;
  s.payload = {0x3b};
  blob = MakeBlob(s);
  CHECK(DecodeCode(blob, 0) == udc::Code::kOk);
}

void TestThreadsBitIdentical() {
  // 3M elements, width 2, FLOAT and FLOAT16: 1 thread and 4 threads agree bit for bit.
  const uint64_t n = 3000000;
  for (uint8_t dtype : {uint8_t{1}, uint8_t{10}}) {
    BlobSpec s;
    s.quantizer = 1;
    s.dtype = dtype;
    s.symbol_width = 2;
    s.shape = {n};
    s.step = 0.0173f;
    s.seed = 99;
    s.payload.resize(2 * n);
    for (uint64_t i = 0; i < 2 * n; ++i) s.payload[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
    const std::vector<uint8_t> blob = MakeBlob(s);
    CheckThreadsAgree(blob, n * (dtype == 1 ? 4 : 2));
  }
}

void TestRejects() {
  BlobSpec good;
  good.dtype = 2;
  good.shape = {4};
  good.payload = {1, 2, 3, 4};
  const std::vector<uint8_t> g = MakeBlob(good);
  CHECK(DecodeCode(g, 4) == udc::Code::kOk);

  // Truncation and trailing bytes.
  for (size_t len : {size_t{0}, size_t{1}, size_t{39}, size_t{40}, size_t{47}, g.size() - 1}) {
    std::vector<uint8_t> t(g.begin(), g.begin() + static_cast<long>(len));
    CHECK(DecodeCode(t, 4) == udc::Code::kTruncated);
  }
  std::vector<uint8_t> t = g;
  t.push_back(0);
  FixChecksum(t);
  CHECK(DecodeCode(t, 4) == udc::Code::kTruncated);
  t = g;  // payload_len = 2^64 - 1: the declared length overflows
  for (int i = 0; i < 8; ++i) t[32 + i] = 0xFF;
  FixChecksum(t);
  CHECK(DecodeCode(t, 4) == udc::Code::kTruncated);

  auto with = [&](auto mutate) {
    BlobSpec s = good;
    mutate(s);
    return MakeBlob(s);
  };
  t = g;
  t[0] = 'X';
  CHECK(DecodeCode(t, 4) == udc::Code::kBadMagic);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.version = 2; }), 4) == udc::Code::kUnsupportedVersion);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.version = 0; }), 4) == udc::Code::kUnsupportedVersion);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.quantizer = 7; }), 4) == udc::Code::kUnknownQuantizer);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.coder = 9; }), 4) == udc::Code::kUnknownCoder);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 2; }), 4) == udc::Code::kBadHeader);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 0x81; }), 4) == udc::Code::kBadHeader);

  // Padded payloads (flags bit 0): coded || N zero bytes || N (u32).
  {
    std::vector<uint8_t> out;
    CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 1; s.payload = {1, 2, 3, 4, 0, 0, 0, 2, 0, 0, 0}; }), 4, &out) ==
          udc::Code::kCorruptPayload);  // pad count 2 after 3 zero bytes: the store coder sees 5 bytes
    CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 1; s.payload = {1, 2, 3, 4, 0, 0, 2, 0, 0, 0}; }), 4, &out) ==
          udc::Code::kOk);
    CHECK(out == std::vector<uint8_t>({1, 2, 3, 4}));
    CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 1; s.payload = {1, 2, 3, 4, 0, 0, 0, 0}; }), 4, &out) ==
          udc::Code::kOk);  // N = 0
    CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 1; s.payload = {1, 2, 3, 4, 0, 7, 2, 0, 0, 0}; }), 4) ==
          udc::Code::kBadHeader);  // a pad byte is not 0
    CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 1; s.payload = {1, 2, 3, 4, 9, 0, 0, 0}; }), 4) ==
          udc::Code::kBadHeader);  // pad count past the payload
    CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 1; s.payload = {1, 2, 3}; }), 4) == udc::Code::kBadHeader);
    CHECK(DecodeCode(with([](BlobSpec& s) { s.flags = 1; s.payload = {1, 2, 3, 4}; }), 4) == udc::Code::kBadHeader);
  }
  CHECK(DecodeCode(with([](BlobSpec& s) { s.shape.assign(9, 1); }), 4) == udc::Code::kBadHeader);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.symbol_width = 2; }), 4) == udc::Code::kBadHeader);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.dtype = 7; }), 4) == udc::Code::kBadHeader);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.step = 0.5f; }), 4) == udc::Code::kBadHeader);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.seed = 1; }), 4) == udc::Code::kBadHeader);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.params = {0, 0, 0, 0}; }), 4) == udc::Code::kBadHeader);
  // Dithered: dtype, step, width.
  auto dith = [&](auto mutate) {
    return with([&](BlobSpec& s) {
      s.quantizer = 1;
      s.dtype = 1;
      s.step = 0.1f;
      mutate(s);
    });
  };
  CHECK(DecodeCode(dith([](BlobSpec&) {}), 16) == udc::Code::kOk);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.dtype = 3; }), 4) == udc::Code::kBadHeader);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.dtype = 6; }), 16) == udc::Code::kBadHeader);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.step = 0.0f; }), 16) == udc::Code::kBadHeader);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.step = -0.1f; }), 16) == udc::Code::kBadHeader);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.step = std::numeric_limits<float>::infinity(); }), 16) ==
        udc::Code::kBadHeader);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.step = std::numeric_limits<float>::quiet_NaN(); }), 16) ==
        udc::Code::kBadHeader);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.symbol_width = 3; s.payload.resize(12); }), 16) == udc::Code::kBadHeader);
  CHECK(DecodeCode(dith([](BlobSpec& s) { s.params = {1}; }), 16) == udc::Code::kBadHeader);

  // Limits (checked before the payload is looked at).
  CHECK(DecodeCode(with([](BlobSpec& s) { s.shape = {(uint64_t{1} << 40) + 1}; }), 4) == udc::Code::kLimitExceeded);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.shape = {uint64_t{1} << 20, (uint64_t{1} << 14) + 1}; }), 4) ==
        udc::Code::kLimitExceeded);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.shape = {uint64_t{1} << 40, uint64_t{1} << 40, uint64_t{1} << 40}; }),
                   4) == udc::Code::kLimitExceeded);
  // numel = 2^34 exactly passes the numel limit, not the expansion limit of a 52-byte blob.
  CHECK(DecodeCode(with([](BlobSpec& s) { s.shape = {uint64_t{1} << 34}; }), 4) == udc::Code::kLimitExceeded);
  // Expansion limit 2^20 + 1024 * blob length, on the decoded bytes and on the symbol bytes.
  {
    const uint64_t blob_len = 40 + 8 + 4;  // ndim 1, store payload of 4 bytes
    const uint64_t limit = (uint64_t{1} << 20) + 1024 * blob_len;
    CHECK(DecodeCode(with([&](BlobSpec& s) { s.shape = {limit}; }), 4) == udc::Code::kBufferSize);
    CHECK(DecodeCode(with([&](BlobSpec& s) { s.shape = {limit + 1}; }), 4) == udc::Code::kLimitExceeded);
    CHECK(DecodeCode(with([&](BlobSpec& s) { s.shape = {limit / 4 + 1}; s.dtype = 6; s.quantizer = 0; s.symbol_width = 4; }),
                     4) == udc::Code::kLimitExceeded);
  }

  // Checksum: flips in the shape, the checksum field and the payload.
  for (size_t pos : {size_t{40}, size_t{12}, size_t{15}, g.size() - 1}) {
    t = g;
    t[pos] ^= 0x01;
    CHECK(DecodeCode(t, 4) == udc::Code::kChecksumMismatch);
  }

  // Store payload of the wrong length.
  CHECK(DecodeCode(with([](BlobSpec& s) { s.payload = {1, 2, 3}; }), 4) == udc::Code::kCorruptPayload);
  CHECK(DecodeCode(with([](BlobSpec& s) { s.payload = {1, 2, 3, 4, 5}; }), 4) == udc::Code::kCorruptPayload);

  // Brotli: the 6-byte stream against wrong sizes, truncated, trailing bytes, garbage.
  const std::vector<uint8_t> br6 = {0x8b, 0x02, 0x80, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x03};
  auto brotli = [&](std::vector<uint8_t> payload, uint64_t n) {
    return with([&](BlobSpec& s) {
      s.coder = 1;
      s.shape = {n};
      s.payload = payload;
    });
  };
  CHECK(DecodeCode(brotli(br6, 6), 6) == udc::Code::kOk);
  CHECK(DecodeCode(brotli(br6, 5), 5) == udc::Code::kCorruptPayload);  // wants more output
  CHECK(DecodeCode(brotli(br6, 7), 7) == udc::Code::kCorruptPayload);  // ends early
  CHECK(DecodeCode(brotli(br6, 0), 0) == udc::Code::kCorruptPayload);
  std::vector<uint8_t> p = br6;
  p.pop_back();
  CHECK(DecodeCode(brotli(p, 6), 6) == udc::Code::kCorruptPayload);  // truncated stream
  p = br6;
  p.push_back(0);
  CHECK(DecodeCode(brotli(p, 6), 6) == udc::Code::kCorruptPayload);  // unused input
  CHECK(DecodeCode(brotli({0xFF, 0xFF, 0xFF, 0xFF}, 6), 6) == udc::Code::kCorruptPayload);
  CHECK(DecodeCode(brotli({}, 6), 6) == udc::Code::kCorruptPayload);
  CHECK(DecodeCode(brotli({0x3b}, 1), 1) == udc::Code::kCorruptPayload);
  CHECK(DecodeCode(brotli({0x3b, 0x3b}, 0), 0) == udc::Code::kCorruptPayload);

  // Output buffer size.
  CHECK(DecodeCode(g, 3) == udc::Code::kBufferSize);
  CHECK(DecodeCode(g, 5) == udc::Code::kBufferSize);
}

void TestCApi() {
  BlobSpec s;
  s.quantizer = 1;
  s.dtype = 10;
  s.symbol_width = 2;
  s.shape = {2, 3};
  s.step = 0.25f;
  s.seed = 7;
  s.payload.assign(12, 1);
  const std::vector<uint8_t> blob = MakeBlob(s);
  udc_blob_info info;
  char err[256];
  CHECK(udc_inspect(blob.data(), blob.size(), &info, err, sizeof err) == UDC_OK);
  CHECK(err[0] == '\0');
  CHECK(info.version == 1 && info.quantizer == 1 && info.coder == 0 && info.dtype == 10 && info.ndim == 2);
  CHECK(info.symbol_width == 2 && info.shape[0] == 2 && info.shape[1] == 3 && info.shape[2] == 0);
  CHECK(info.numel == 6 && info.nbytes == 12 && info.step == 0.25f && info.seed == 7 && info.payload_len == 12);
  std::vector<uint8_t> out(12);
  CHECK(udc_decode(blob.data(), blob.size(), out.data(), out.size(), nullptr, 0) == UDC_OK);
  CHECK(udc_decode(blob.data(), blob.size(), out.data(), 11, err, sizeof err) == UDC_BUFFER_SIZE);
  std::printf("BUFFER_SIZE message: %s\n", err);
  CHECK(std::string(err).find("11") != std::string::npos);
  CHECK(udc_decode(blob.data(), blob.size() - 1, out.data(), 12, err, sizeof err) == UDC_TRUNCATED);
  std::printf("TRUNCATED message: %s\n", err);
  CHECK(std::string(err) == "blob declares 68 bytes but has 67 (40 + 8*ndim 2 + params_len 0 + payload_len 12)");
  char tiny[8];
  CHECK(udc_decode(blob.data(), 10, out.data(), 12, tiny, sizeof tiny) == UDC_TRUNCATED);
  CHECK(std::strlen(tiny) == 7);
  CHECK(udc_inspect(nullptr, 0, &info, err, sizeof err) == UDC_INVALID_ARGUMENT);
  CHECK(udc_inspect(blob.data(), blob.size(), nullptr, err, sizeof err) == UDC_INVALID_ARGUMENT);
  CHECK(udc_decode(blob.data(), blob.size(), nullptr, 12, err, sizeof err) == UDC_INVALID_ARGUMENT);
  CHECK(std::string(udc_status_name(UDC_CHECKSUM_MISMATCH)) == "CHECKSUM_MISMATCH");
  CHECK(std::string(udc_status_name(UDC_INTERNAL)) == "INTERNAL");
  CHECK(std::string(udc_status_name(99)) == "UNKNOWN_STATUS");
  CHECK(std::string(udc_version()).find("(format 1)") != std::string::npos);
}

// ---- decode options (udc_decode_options, udc_decode_ex) -------------------------------------
std::vector<uint8_t> ReadFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

udc_decode_options Options(uint32_t threads, uint64_t max_output_bytes) {
  udc_decode_options o;
  CHECK(udc_decode_options_init(&o, sizeof o) == UDC_OK);
  o.threads = threads;
  o.max_output_bytes = max_output_bytes;
  return o;
}

// Every golden vector: udc_decode_ex and udc_decode_units_ex on 1, 2, 8 and the default
// number of threads give the golden bytes; a max_output_bytes below the decoded size is
// LIMIT_EXCEEDED, equal to it succeeds.
void TestDecodeOptionsGolden(const char* golden_dir) {
  if (golden_dir == nullptr) {
    std::printf("golden vectors: skipped (pass the folder as the first argument)\n");
    return;
  }
  const std::filesystem::path dir(golden_dir);
  const std::vector<uint8_t> manifest = ReadFile(dir / "manifest.json");
  const std::string text(manifest.begin(), manifest.end());
  size_t listed = 0;
  for (size_t at = text.find("\"name\""); at != std::string::npos; at = text.find("\"name\"", at + 1)) ++listed;
  size_t seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".blob") continue;
    ++seen;
    const std::vector<uint8_t> blob = ReadFile(entry.path());
    std::filesystem::path bin = entry.path();
    bin.replace_extension(".bin");
    const std::vector<uint8_t> want = ReadFile(bin);
    const size_t n = want.size();
    std::vector<uint8_t> out(n + 1);
    char err[256];
    for (uint32_t threads : {1u, 2u, 8u, 0u}) {
      const udc_decode_options o = Options(threads, 0);
      std::fill(out.begin(), out.end(), 0xAB);
      const int rc = udc_decode_ex(blob.data(), blob.size(), out.data(), n, &o, err, sizeof err);
      CHECK(rc == UDC_OK);
      if (rc != UDC_OK) std::fprintf(stderr, "%s: %s\n", entry.path().filename().c_str(), err);
      CHECK(std::equal(want.begin(), want.end(), out.begin()));
      std::fill(out.begin(), out.end(), 0xAB);
      CHECK(udc_decode_units_ex(blob.data(), blob.size(), out.data(), n, &o, nullptr, 0) == UDC_OK);
      CHECK(std::equal(want.begin(), want.end(), out.begin()));
    }
    udc_decode_options o = Options(1, n);  // the cap equal to the size: decodes
    CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), n, &o, nullptr, 0) == UDC_OK);
    CHECK(std::equal(want.begin(), want.end(), out.begin()));
    CHECK(udc_decode_units_ex(blob.data(), blob.size(), out.data(), n, &o, nullptr, 0) == UDC_OK);
    if (n == 0) continue;  // a cap of 0 is no cap
    o = Options(4, n - 1);  // one byte below: LIMIT_EXCEEDED, also before the out_len check
    CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), n, &o, err, sizeof err) == UDC_LIMIT_EXCEEDED);
    CHECK(std::string(err).find("max_output_bytes " + std::to_string(n - 1)) != std::string::npos);
    CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), n + 1, &o, nullptr, 0) == UDC_LIMIT_EXCEEDED);
    CHECK(udc_decode_units_ex(blob.data(), blob.size(), out.data(), n, &o, nullptr, 0) == UDC_LIMIT_EXCEEDED);
  }
  std::printf("decode options on %zu golden vectors (manifest lists %zu)\n", seen, listed);
  CHECK(seen > 0);
  CHECK(seen == listed);
}

void TestDecodeOptionsStruct() {
  BlobSpec s;
  s.quantizer = 1;
  s.dtype = 1;
  s.symbol_width = 1;
  s.shape = {3, 4};
  s.step = 0.5f;
  s.payload.assign(12, 3);
  const std::vector<uint8_t> blob = MakeBlob(s);
  std::vector<uint8_t> want(48), out(48);
  CHECK(udc_decode(blob.data(), blob.size(), want.data(), 48, nullptr, 0) == UDC_OK);
  char err[256];

  // NULL options are the defaults; the initialiser macro equals udc_decode_options_init.
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, nullptr, nullptr, 0) == UDC_OK && out == want);
  const udc_decode_options macro = UDC_DECODE_OPTIONS_INIT;
  udc_decode_options o;
  std::memset(&o, 0x5A, sizeof o);
  CHECK(udc_decode_options_init(&o, sizeof o) == UDC_OK);
  CHECK(o.struct_size == sizeof o && o.threads == 0 && o.max_output_bytes == 0);
  CHECK(std::memcmp(&macro, &o, sizeof o) == 0);
  CHECK(udc_decode_options_init(nullptr, sizeof o) == UDC_INVALID_ARGUMENT);
  CHECK(udc_decode_options_init(&o, 3) == UDC_INVALID_ARGUMENT);

  // struct_size 0 (not initialised) and out-of-range sizes are refused, naming the field.
  o.struct_size = 0;
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &o, err, sizeof err) == UDC_INVALID_ARGUMENT);
  CHECK(std::string(err).find("struct_size") != std::string::npos);
  o.struct_size = 4097;
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &o, nullptr, 0) == UDC_INVALID_ARGUMENT);

  // An older caller (struct_size 8: no max_output_bytes): the field past it is not read.
  o = Options(1, 1);
  o.struct_size = 8;
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &o, nullptr, 0) == UDC_OK && out == want);
  o.struct_size = 4;  // struct_size only
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &o, nullptr, 0) == UDC_OK && out == want);

  // A newer caller: unknown trailing bytes must be 0.
  struct Newer {
    udc_decode_options base;
    uint64_t future;
  } newer;
  CHECK(udc_decode_options_init(&newer.base, sizeof newer) == UDC_OK);
  CHECK(newer.base.struct_size == sizeof newer && newer.future == 0);
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &newer.base, nullptr, 0) == UDC_OK && out == want);
  newer.future = 1;
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &newer.base, err, sizeof err) == UDC_INVALID_ARGUMENT);
  CHECK(std::string(err).find("byte 16") != std::string::npos);
  newer.future = 0;
  newer.base.max_output_bytes = 47;
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &newer.base, nullptr, 0) == UDC_LIMIT_EXCEEDED);

  // Any thread count is accepted (clamped); the bytes do not change.
  o = Options(std::numeric_limits<uint32_t>::max(), 0);
  CHECK(udc_decode_ex(blob.data(), blob.size(), out.data(), 48, &o, nullptr, 0) == UDC_OK && out == want);

  // Argument checks come before the options, and the blob's own errors before the cap.
  CHECK(udc_decode_ex(nullptr, 0, out.data(), 48, &o, nullptr, 0) == UDC_INVALID_ARGUMENT);
  o = Options(1, 1);
  std::vector<uint8_t> bad = blob;
  bad.back() ^= 1;  // a payload byte
  CHECK(udc_decode_ex(bad.data(), bad.size(), out.data(), 48, &o, nullptr, 0) == UDC_CHECKSUM_MISMATCH);
}

// 3M elements (split across threads): udc_decode_ex on 1 and on 3 threads, the same bytes.
void TestDecodeOptionsThreads() {
  const uint64_t n = 3000000;
  BlobSpec s;
  s.quantizer = 1;
  s.dtype = 10;
  s.symbol_width = 2;
  s.shape = {n};
  s.step = 0.031f;
  s.seed = 5;
  s.payload.resize(2 * n);
  for (uint64_t i = 0; i < 2 * n; ++i) s.payload[i] = static_cast<uint8_t>((i * 40503u) >> 7);
  const std::vector<uint8_t> blob = MakeBlob(s);
  std::vector<uint8_t> one(2 * n), three(2 * n, 1);
  udc_decode_options o = Options(1, 0);
  CHECK(udc_decode_ex(blob.data(), blob.size(), one.data(), one.size(), &o, nullptr, 0) == UDC_OK);
  o.threads = 3;
  CHECK(udc_decode_ex(blob.data(), blob.size(), three.data(), three.size(), &o, nullptr, 0) == UDC_OK);
  CHECK(one == three);
}

// ---- coder 2, range (FORMAT.md 5.2) ---------------------------------------------------
// Expected payloads from the pure-Python reference tests/range_reference.py.
void TestRangeCoder() {
  const std::vector<uint32_t> syms = {0, 1, 2, 3, 4, 255, 0, 0, 7, 9};
  std::vector<uint8_t> payload;
  CHECK(udc::RangeEncode(syms.data(), syms.size(), 1, 1, &payload).ok());
  CHECK((payload == std::vector<uint8_t>{1, 119, 42, 176, 65, 194, 73, 90}));
  const std::vector<uint32_t> syms2 = {5, 6, 7, 8, 9, 10};
  CHECK(udc::RangeEncode(syms2.data(), syms2.size(), 1, 2, &payload).ok());
  CHECK((payload == std::vector<uint8_t>{2, 165, 32, 22, 34}));

  // round trips: every width, several periods, a pseudo-random heavy-tailed source
  uint64_t x = 12345;
  for (unsigned width : {1u, 2u, 4u}) {
    for (uint32_t period : {1u, 3u, 8u, 300u}) {
      std::vector<uint32_t> in(3000), back(3000, 0xDEADBEEF);
      for (auto& v : in) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        const unsigned bits = static_cast<unsigned>(x >> 59) % (8 * width);
        v = static_cast<uint32_t>((x >> 20) & ((uint64_t{1} << bits) - 1));
      }
      in[0] = static_cast<uint32_t>((uint64_t{1} << (8 * width)) - 1);
      CHECK(udc::RangeEncode(in.data(), in.size(), width, period, &payload).ok());
      CHECK(payload[0] == (period > 255 ? 255 : period));
      CHECK(udc::RangeDecode(payload.data(), payload.size(), in.size(), width, back.data()).ok());
      CHECK(in == back);
      // the same payload inside a blob (raw quantizer needs dtype width == symbol width)
      if (width != 2) {
        BlobSpec spec;
        spec.coder = 2;
        spec.dtype = width == 1 ? 2 : 6;
        spec.symbol_width = static_cast<uint8_t>(width);
        spec.shape = {3000};
        spec.payload = payload;
        std::vector<uint8_t> out;
        CHECK(DecodeCode(MakeBlob(spec), 3000 * width, &out) == udc::Code::kOk);
        for (size_t i = 0; i < 3000; ++i) {
          uint32_t v = 0;
          std::memcpy(&v, out.data() + i * width, width);
          if (v != in[i]) { CHECK(v == in[i]); break; }
        }
        spec.payload.push_back(1);  // a byte the decoder does not need
        CHECK(DecodeCode(MakeBlob(spec), 3000 * width) == udc::Code::kCorruptPayload);
      }
    }
  }

  // hostile payloads
  std::vector<uint32_t> out(16);
  auto corrupt = [&](std::vector<uint8_t> p, uint64_t numel, unsigned width) {
    const udc::Status st = udc::RangeDecode(p.data(), p.size(), numel, width, out.data());
    return st.code() == udc::Code::kCorruptPayload;
  };
  CHECK(corrupt({}, 1, 1));                              // no period byte
  CHECK(corrupt({0, 111, 32}, 1, 1));                    // period 0
  CHECK(corrupt({1, 119, 42, 176, 65, 194, 73, 90, 0}, 10, 1));  // trailing zero
  CHECK(corrupt({1, 119, 42, 176, 65, 194, 73, 90, 5, 5, 5, 5}, 10, 1));  // unused bytes
  CHECK(corrupt({1, 5}, 0, 1));                          // stream for no symbols
  CHECK(corrupt({1, 0xFF, 0xFF, 0xFF, 0xFF}, 1, 1));     // starts outside the interval
  CHECK(corrupt({1, 170, 8, 119}, 2, 1));                // second symbol is 256 (too wide)
  CHECK(!corrupt({1}, 16, 1));                           // empty stream: 16 zeros, valid
  CHECK(out[0] == 0 && out[15] == 0);
  std::vector<uint8_t> p = {1, 119, 42, 176, 65, 194, 73, 90};
  CHECK(udc::RangeDecode(p.data(), p.size(), 10, 1, out.data()).ok());
  CHECK(out[5] == 255 && out[9] == 9);
  CHECK(!udc::RangeEncode(syms.data(), syms.size(), 1, 0, &payload).ok());  // period 0
  const uint32_t wide = 256;
  CHECK(udc::RangeEncode(&wide, 1, 1, 1, &payload).code() == udc::Code::kInvalidArgument);

  // C API
  size_t len = 0;
  uint8_t small[4];
  CHECK(udc_range_encode(syms.data(), syms.size(), 1, 1, small, sizeof small, &len, nullptr, 0) == UDC_BUFFER_SIZE);
  CHECK(len == 8);
  uint8_t buf[8];
  CHECK(udc_range_encode(syms.data(), syms.size(), 1, 1, buf, sizeof buf, &len, nullptr, 0) == UDC_OK);
  uint32_t dec[10];
  CHECK(udc_range_decode(buf, len, 10, 1, dec, nullptr, 0) == UDC_OK);
  CHECK(std::memcmp(dec, syms.data(), sizeof dec) == 0);
  CHECK(udc_range_decode(buf, len - 1, 10, 1, dec, nullptr, 0) != UDC_OK || dec[9] != 9);
}

// ---- coder 2, range: the extended header (FORMAT.md 5.2: 0, variant, varint period) -------
// Expected payloads from tests/range_reference.py (encode(..., wide=True)).
void TestRangeWidePeriod() {
  const std::vector<uint32_t> syms = {0, 1, 2, 3, 4, 255, 0, 0, 7, 9};
  std::vector<uint8_t> payload;
  CHECK(udc::RangeEncodeVariant(syms.data(), syms.size(), 1, 300, 1, &payload).ok());
  CHECK((payload == std::vector<uint8_t>{0, 1, 172, 2, 119, 42, 152, 138, 237, 118, 140}));
  CHECK(udc::RangeEncodeVariant(syms.data(), syms.size(), 1, uint32_t{1} << 20, 1, &payload).ok());
  CHECK((payload == std::vector<uint8_t>{0, 1, 128, 128, 64, 119, 42, 152, 138, 237, 118, 140}));
  std::vector<uint8_t> legacy;
  CHECK(udc::RangeEncodeVariant(syms.data(), syms.size(), 1, 255, 1, &payload).ok());
  CHECK(udc::RangeEncode(syms.data(), syms.size(), 1, 255, &legacy).ok() && payload == legacy);
  CHECK(udc::RangeEncodeVariant(syms.data(), syms.size(), 1, (uint32_t{1} << 20) + 1, 1, &payload).code() ==
        udc::Code::kInvalidArgument);
  // variant 2: a model set per vector position (period <= 8)
  CHECK(udc::RangeEncodeVariant(syms.data(), syms.size(), 1, 4, 2, &payload).ok());
  CHECK((payload == std::vector<uint8_t>{0, 2, 4, 111, 93, 80, 23, 209, 179, 239}));
  std::vector<uint32_t> back10(10);
  CHECK(udc::RangeDecode(payload.data(), payload.size(), 10, 1, back10.data()).ok() && back10 == syms);
  CHECK(udc::RangeEncodeVariant(syms.data(), syms.size(), 1, 9, 2, &payload).code() == udc::Code::kInvalidArgument);
  CHECK(udc::RangeEncodeVariant(syms.data(), syms.size(), 1, 4, 3, &payload).code() == udc::Code::kInvalidArgument);
  for (uint8_t bad_period : {uint8_t{0}, uint8_t{9}}) {
    std::vector<uint8_t> p = {0, 2, bad_period, 111, 93, 80, 23, 209, 179, 239};
    CHECK(udc::RangeDecode(p.data(), p.size(), 10, 1, back10.data()).code() == udc::Code::kCorruptPayload);
  }

  uint64_t x = 777;
  for (uint32_t period : {256u, 1000u, 4096u}) {
    std::vector<uint32_t> in(5000), back(5000, 0xDEADBEEF);
    for (size_t i = 0; i < in.size(); ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      const unsigned bits = static_cast<unsigned>(i % period) % 11;  // scale depends on the column
      in[i] = static_cast<uint32_t>((x >> 33) & ((uint64_t{1} << bits) - 1));
    }
    CHECK(udc::RangeEncodeVariant(in.data(), in.size(), 2, period, 1, &payload).ok());
    CHECK(payload[0] == 0 && payload[1] == 1);
    CHECK(udc::RangeDecode(payload.data(), payload.size(), in.size(), 2, back.data()).ok());
    CHECK(in == back);
  }

  std::vector<uint32_t> out(16);
  auto code = [&](std::vector<uint8_t> p, uint64_t numel) {
    return udc::RangeDecode(p.data(), p.size(), numel, 1, out.data()).code();
  };
  const std::vector<uint8_t> stream = {119, 42, 152, 138, 237, 118, 140};
  auto with = [&](std::vector<uint8_t> head) {
    head.insert(head.end(), stream.begin(), stream.end());
    return head;
  };
  CHECK(code(with({0, 1, 172, 2}), 10) == udc::Code::kOk);
  CHECK(out[5] == 255 && out[9] == 9);
  CHECK(code({0}, 10) == udc::Code::kCorruptPayload);                         // ends after the escape
  CHECK(code(with({0, 3, 5}), 10) == udc::Code::kCorruptPayload);             // unknown variant
  CHECK(code({0, 1}, 10) == udc::Code::kCorruptPayload);                      // no varint
  CHECK(code({0, 1, 0x80}, 10) == udc::Code::kCorruptPayload);                // truncated varint
  CHECK(code(with({0, 1, 0}), 10) == udc::Code::kCorruptPayload);             // period 0
  CHECK(code(with({0, 1, 0x81, 0x80, 0x40}), 10) == udc::Code::kCorruptPayload);  // 2^20 + 1
  CHECK(code(with({0, 1, 0x80, 0x80, 0x80, 1}), 10) == udc::Code::kCorruptPayload);  // 4 bytes
  CHECK(code(with({0, 1, 0x85, 0}), 10) == udc::Code::kCorruptPayload);       // empty last group
  CHECK(code({0, 1, 0x80, 0x80, 0x40}, 0) == udc::Code::kOk);                 // 2^20, no symbols

  size_t len = 0;
  uint8_t buf[16];
  CHECK(udc_range_encode_variant(syms.data(), syms.size(), 1, 300, 1, buf, sizeof buf, &len, nullptr, 0) == UDC_OK);
  CHECK(len == 11 && buf[2] == 172);
  uint32_t dec[10];
  CHECK(udc_range_decode(buf, len, 10, 1, dec, nullptr, 0) == UDC_OK);
  CHECK(std::memcmp(dec, syms.data(), sizeof dec) == 0);
}

// ---- lattice quantizers A2 (2), D4 (3), E8 (4) and codeword tables (FORMAT.md 4.2-4.5) ----
// Shape {3, 3}, axis order (1, 0), store coder, width 1, step 0.37, seed 12345, a table with
// one entry (the first vector's symbols -> 0.75 in every coordinate), 9 = whole vectors +
// a scalar tail. Expected bits from the Python reference decoder (onnx_udc/quantizers).
struct LatticeCase {
  uint8_t quantizer;
  int n;
  uint32_t expect[9];
};

std::vector<uint8_t> LatticeParams(int n, uint32_t count, const std::vector<uint32_t>& keys, float value) {
  std::vector<uint8_t> p = {1, 0};
  Put(p, count, 4);
  for (size_t e = 0; e < keys.size() / static_cast<size_t>(n); ++e) {
    for (int j = 0; j < n; ++j) Put(p, keys[e * n + j], 4);
    for (int j = 0; j < n; ++j) Put(p, FloatBits(value), 4);
  }
  return p;
}

BlobSpec LatticeSpec(uint8_t quantizer, int n) {
  BlobSpec s;
  s.quantizer = quantizer;
  s.dtype = 1;
  s.symbol_width = 1;
  s.shape = {3, 3};
  s.step = 0.37f;
  s.seed = 12345;
  for (uint32_t i = 0; i < 9; ++i) s.payload.push_back(static_cast<uint8_t>((i * 7 + 3) % 11));
  std::vector<uint32_t> key(s.payload.begin(), s.payload.begin() + n);
  s.params = LatticeParams(n, 1, key, 0.75f);
  return s;
}

void TestLatticeKnownValues() {
  const LatticeCase cases[] = {
      {2, 2, {0x3dc4fcd0, 0x3e6464ca, 0xbe7d8096, 0x3df004ac, 0xbfe55ccc, 0x3fb655e4, 0x3fac0978, 0xbf6bb5fc, 0x3f3f5acc}},
      {3, 4, {0x3e1a26ae, 0x3dfd7460, 0xbec66053, 0x3dd8e187, 0xbfc7ac1b, 0x4035f107, 0x3e22c6e3, 0xbf9251bb, 0x3f3f5acc}},
      {4, 8, {0x3e66ad75, 0x3e4610a4, 0x3e6e943f, 0x3e305175, 0xbd524b47, 0x3b927ed5, 0x3e70ef7a, 0x3d9841e8, 0x3f3f5acc}},
  };
  for (const LatticeCase& c : cases) {
    const std::vector<uint8_t> blob = MakeBlob(LatticeSpec(c.quantizer, c.n));
    for (int threads : {1, 4}) {
      std::vector<uint8_t> out;
      CHECK(DecodeCode(blob, 36, &out, threads) == udc::Code::kOk);
      for (int i = 0; i < 9; ++i) {
        uint32_t bits;
        std::memcpy(&bits, out.data() + 4 * i, 4);
        CHECK_EQ_U(bits, c.expect[i]);
      }
    }
  }
}

void TestLatticeThreadsBitIdentical() {
  // 3,000,003 elements (a tail for every n), a non-identity axis order, a codeword table
  // with 200 keys: 1 thread and 4 threads agree bit for bit, FLOAT and FLOAT16.
  const uint64_t rows = 1000, cols = 3003, n = rows * cols;
  for (uint8_t q : {uint8_t{2}, uint8_t{3}, uint8_t{4}}) {
    const int dim = q == 2 ? 2 : q == 3 ? 4 : 8;
    for (uint8_t dtype : {uint8_t{1}, uint8_t{10}}) {
      BlobSpec s;
      s.quantizer = q;
      s.dtype = dtype;
      s.symbol_width = 2;
      s.shape = {rows, cols};
      s.step = 0.0173f;
      s.seed = 99;
      s.payload.resize(2 * n);
      for (uint64_t i = 0; i < n; ++i) {  // small codes, so that table keys hit
        s.payload[i] = static_cast<uint8_t>(((i * 2654435761u) >> 13) % 5);
        s.payload[n + i] = static_cast<uint8_t>((i * 40503u) >> 7 & 1);
      }
      std::vector<uint32_t> keys;
      for (uint32_t e = 0; e < 200; ++e) {
        for (int j = 0; j < dim; ++j) keys.push_back(j == dim - 1 ? e : 0);  // increasing in the last symbol
      }
      s.params = LatticeParams(dim, 200, keys, -1.25f);
      const std::vector<uint8_t> blob = MakeBlob(s);
      CheckThreadsAgree(blob, n * (dtype == 1 ? 4 : 2));
    }
  }
}

void TestLatticeRejects() {
  for (uint8_t q : {uint8_t{2}, uint8_t{3}, uint8_t{4}}) {
    const int n = q == 2 ? 2 : q == 3 ? 4 : 8;
    const BlobSpec good = LatticeSpec(q, n);
    CHECK(DecodeCode(MakeBlob(good), 36) == udc::Code::kOk);
    auto code = [&](void (*mutate)(BlobSpec&, int)) {
      BlobSpec s = good;
      mutate(s, n);
      return DecodeCode(MakeBlob(s), 36);
    };
    CHECK(code([](BlobSpec& s, int) { s.params = {1}; }) == udc::Code::kBadHeader);         // order too short
    CHECK(code([](BlobSpec& s, int) { s.params[1] = 1; }) == udc::Code::kBadHeader);        // order repeats
    CHECK(code([](BlobSpec& s, int) { s.params[0] = 2; }) == udc::Code::kBadHeader);        // out of range
    CHECK(code([](BlobSpec& s, int) { s.params.resize(5); }) == udc::Code::kBadHeader);     // count cut
    CHECK(code([](BlobSpec& s, int) { s.params[2] = 2; }) == udc::Code::kBadHeader);        // count too large
    CHECK(code([](BlobSpec& s, int) { s.params.push_back(0); }) == udc::Code::kBadHeader);  // trailing byte
    CHECK(code([](BlobSpec& s, int) { s.params[2] = 0; s.params[5] = 1; }) == udc::Code::kBadHeader);  // 2^24+
    CHECK(code([](BlobSpec& s, int m) {  // a NaN value
      const uint32_t nan = 0x7FC00000u;
      for (int k = 0; k < 4; ++k) s.params[6 + 4 * m + k] = static_cast<uint8_t>(nan >> (8 * k));
    }) == udc::Code::kBadHeader);
    CHECK(code([](BlobSpec& s, int m) {  // two entries, equal keys
      std::vector<uint8_t> entry(s.params.begin() + 6, s.params.end());
      s.params.insert(s.params.end(), entry.begin(), entry.end());
      s.params[2] = 2;
      (void)m;
    }) == udc::Code::kBadHeader);
    CHECK(code([](BlobSpec& s, int) { s.params.resize(2); Put(s.params, 0, 4); }) == udc::Code::kOk);  // no table
    CHECK(code([](BlobSpec& s, int) { s.dtype = 3; }) == udc::Code::kBadHeader);
    CHECK(code([](BlobSpec& s, int) { s.step = -1.0f; }) == udc::Code::kBadHeader);
  }
  // The first id after the registered ones (raw, scalar, lattices, pq, scalar_channel) is unknown.
  BlobSpec s = LatticeSpec(4, 8);
  s.quantizer = 7;
  CHECK(DecodeCode(MakeBlob(s), 36) == udc::Code::kUnknownQuantizer);
}

void TestScalarCodewordTable() {
  // Scalar quantizer with a table {symbol 3 -> 10.5}: symbol 3 decodes as (10.5 - d) * step.
  BlobSpec s;
  s.quantizer = 1;
  s.dtype = 1;
  s.symbol_width = 1;
  s.shape = {4};
  s.step = 0.5f;
  s.seed = 7;
  s.payload = {3, 4, 3, 0};
  Put(s.params, 1, 4);
  Put(s.params, 3, 4);
  Put(s.params, FloatBits(10.5f), 4);
  std::vector<uint8_t> out;
  CHECK(DecodeCode(MakeBlob(s), 16, &out) == udc::Code::kOk);
  const float expect[4] = {(10.5f - udc::Dither(7, 0)) * 0.5f, (2.0f - udc::Dither(7, 1)) * 0.5f,
                           (10.5f - udc::Dither(7, 2)) * 0.5f, (0.0f - udc::Dither(7, 3)) * 0.5f};
  for (int i = 0; i < 4; ++i) {
    float w;
    std::memcpy(&w, out.data() + 4 * i, 4);
    CHECK_EQ_U(FloatBits(w), FloatBits(expect[i]));
  }
  s.params[0] = 2;  // count says 2, one entry present
  CHECK(DecodeCode(MakeBlob(s), 16) == udc::Code::kBadHeader);
}

}  // namespace

// ---- product quantization (FORMAT.md 4.7) ---------------------------------------------
BlobSpec PQSpec() {
  // W [2, 3] read in order (1, 0) in blocks of d = 2 from k = 2 centroids;
  // centroids (halves): c0 = (1.0, 2.0), c1 = (-0.5, smallest subnormal 2^-24).
  BlobSpec s;
  s.quantizer = 5;
  s.dtype = 1;
  s.shape = {2, 3};
  s.params = {1, 0};     // order
  Put(s.params, 2, 2);   // d
  Put(s.params, 2, 4);   // k
  s.params.push_back(0);  // tail: pad
  for (uint64_t h : {0x3C00u, 0x4000u, 0xB800u, 0x0001u}) Put(s.params, h, 2);
  s.payload = {1, 0, 1};  // one index per block
  return s;
}

void TestPQ() {
  BlobSpec s = PQSpec();
  std::vector<uint8_t> out;
  CHECK(DecodeCode(MakeBlob(s), 24, &out) == udc::Code::kOk);
  const float sub = BitsFloat(0x33800000u);  // 2^-24
  const float want[6] = {-0.5f, 1.0f, -0.5f, sub, 2.0f, sub};  // transposed stream (3, 2) -> W (2, 3)
  CHECK(std::memcmp(out.data(), want, 24) == 0);
  s.dtype = 10;  // FLOAT16: the halves themselves
  CHECK(DecodeCode(MakeBlob(s), 12, &out) == udc::Code::kOk);
  const uint16_t want16[6] = {0xB800, 0x3C00, 0xB800, 0x0001, 0x4000, 0x0001};
  CHECK(std::memcmp(out.data(), want16, 12) == 0);

  s = PQSpec();
  s.payload[1] = 2;  // index == k
  CHECK(DecodeCode(MakeBlob(s), 24) == udc::Code::kCorruptPayload);
  s = PQSpec();
  s.payload.push_back(0);  // one symbol more than blocks
  CHECK(DecodeCode(MakeBlob(s), 24) == udc::Code::kCorruptPayload);
  s = PQSpec();
  s.params[0] = 0;  // order (0, 0)
  CHECK(DecodeCode(MakeBlob(s), 24) == udc::Code::kBadHeader);
  s = PQSpec();
  s.params.pop_back();  // table one byte short
  CHECK(DecodeCode(MakeBlob(s), 24) == udc::Code::kBadHeader);
  s = PQSpec();
  s.params[4] = 0xFF;  // k = 255: the table length no longer matches
  CHECK(DecodeCode(MakeBlob(s), 24) == udc::Code::kBadHeader);
  s = PQSpec();
  s.symbol_width = 2;  // k = 2 needs one-byte indices
  CHECK(DecodeCode(MakeBlob(s), 24) == udc::Code::kBadHeader);
  s = PQSpec();
  s.params.resize(5);  // shorter than the fixed fields
  CHECK(DecodeCode(MakeBlob(s), 24) == udc::Code::kBadHeader);
}

// ---- per-channel scalar quantizer (FORMAT.md 4.8) ------------------------------------------
BlobSpec ChannelSpec() {
  // W [2, 3] with channels along axis 1 (C = 3, R = 1): steps 0.5, 2.0, 2^-126 (normal).
  BlobSpec s;
  s.quantizer = 6;
  s.dtype = 1;
  s.symbol_width = 1;
  s.shape = {2, 3};
  s.step = 1.0f;
  s.seed = 9;
  s.params = {1};
  for (uint32_t bits : {FloatBits(0.5f), FloatBits(2.0f), 0x00800000u}) Put(s.params, bits, 4);
  s.payload = {0, 1, 2, 3, 4, 5};  // q = 0, -1, 1, -2, 2, -3
  return s;
}

void TestScalarChannel() {
  const float steps[3] = {0.5f, 2.0f, BitsFloat(0x00800000u)};
  const float q[6] = {0.0f, -1.0f, 1.0f, -2.0f, 2.0f, -3.0f};
  BlobSpec spec = ChannelSpec();
  std::vector<uint8_t> out;
  CHECK(DecodeCode(MakeBlob(spec), 24, &out) == udc::Code::kOk);
  for (int i = 0; i < 6; ++i) {
    const float t = q[i] - udc::Dither(9, i);
    const float want = t * steps[i % 3];
    float w;
    std::memcpy(&w, out.data() + 4 * i, 4);
    CHECK_EQ_U(FloatBits(w), FloatBits(want));
  }
  spec.params[0] = 0;  // axis 0: C = 2, so 1 + 4*2 bytes are needed, 13 given
  CHECK(DecodeCode(MakeBlob(spec), 24) == udc::Code::kBadHeader);
  spec.params.resize(9);  // now exactly C = 2 steps along axis 0 (R = 3): channel of element i is i / 3
  CHECK(DecodeCode(MakeBlob(spec), 24, &out) == udc::Code::kOk);
  for (int i = 0; i < 6; ++i) {
    const float t = q[i] - udc::Dither(9, i);
    const float want = t * steps[i / 3];
    float w;
    std::memcpy(&w, out.data() + 4 * i, 4);
    CHECK_EQ_U(FloatBits(w), FloatBits(want));
  }
  CheckThreadsAgree(MakeBlob(ChannelSpec()), 24);

  auto code = [](void (*mutate)(BlobSpec&)) {
    BlobSpec mutated = ChannelSpec();
    mutate(mutated);
    return DecodeCode(MakeBlob(mutated), mutated.dtype == 10 ? 12 : 24);
  };
  CHECK(code([](BlobSpec& s) { s.dtype = 10; }) == udc::Code::kOk);
  CHECK(code([](BlobSpec& s) { s.symbol_width = 2; s.payload.resize(12); }) == udc::Code::kOk);
  CHECK(code([](BlobSpec& s) { s.params.clear(); }) == udc::Code::kBadHeader);            // no params
  CHECK(code([](BlobSpec& s) { s.params.pop_back(); }) == udc::Code::kBadHeader);         // one byte short
  CHECK(code([](BlobSpec& s) { s.params.push_back(0); }) == udc::Code::kBadHeader);       // trailing byte
  CHECK(code([](BlobSpec& s) { s.params[0] = 2; }) == udc::Code::kBadHeader);             // axis == ndim
  CHECK(code([](BlobSpec& s) { s.params[0] = 255; }) == udc::Code::kBadHeader);           // axis 255
  CHECK(code([](BlobSpec& s) { s.params[1] = s.params[2] = s.params[3] = s.params[4] = 0; }) ==
        udc::Code::kBadHeader);                                                              // step 0
  CHECK(code([](BlobSpec& s) { s.params[12] = 0x80; s.params[11] = 0; }) == udc::Code::kBadHeader);  // -0.0
  CHECK(code([](BlobSpec& s) { s.params[11] = 0x7F; }) == udc::Code::kBadHeader);         // 0x007F0000 subnormal
  CHECK(code([](BlobSpec& s) { s.params[7] = 0xC0; s.params[8] = 0x7F; }) == udc::Code::kBadHeader);  // NaN
  CHECK(code([](BlobSpec& s) { s.params[7] = 0x80; s.params[8] = 0x7F; }) == udc::Code::kBadHeader);  // +inf
  CHECK(code([](BlobSpec& s) { s.params[8] = 0xC0; }) == udc::Code::kBadHeader);          // negative step
  CHECK(code([](BlobSpec& s) { s.step = 0.0f; }) == udc::Code::kBadHeader);               // reference step 0
  CHECK(code([](BlobSpec& s) { s.step = std::numeric_limits<float>::infinity(); }) == udc::Code::kBadHeader);
  CHECK(code([](BlobSpec& s) { s.dtype = 3; }) == udc::Code::kBadHeader);
  CHECK(code([](BlobSpec& s) { s.symbol_width = 3; s.payload.resize(18); }) == udc::Code::kBadHeader);
  CHECK(code([](BlobSpec& s) { s.shape = {}; s.params = {0}; s.payload = {0}; }) == udc::Code::kBadHeader);  // 0-d
  // An empty tensor: C = 0 channels (params = the axis alone), or channels with no elements.
  BlobSpec e = ChannelSpec();
  e.shape = {2, 0};
  e.params = {1};
  e.payload.clear();
  CHECK(DecodeCode(MakeBlob(e), 0) == udc::Code::kOk);
  e.shape = {0, 3};
  CHECK(DecodeCode(MakeBlob(e), 0) == udc::Code::kBadHeader);  // axis 1 has 3 channels: 3 steps needed
  e.params = ChannelSpec().params;
  CHECK(DecodeCode(MakeBlob(e), 0) == udc::Code::kOk);
}

// ---- the SIMD levels (core/simd.h) against the scalar path --------------------------------

// Deterministic test data (SplitMix64 of a counter).
struct TestRng {
  uint64_t state;
  uint64_t Next() { return udc::SplitMix64At(state++, 0); }
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(Next() % n); }
};

// Zigzag symbols of a width: mostly small (Gaussian-like), some at the top of the width.
std::vector<uint32_t> TestSymbols(TestRng& rng, uint64_t n, unsigned width) {
  std::vector<uint32_t> v(n);
  const uint64_t top = width == 4 ? 0xFFFFFFFFull : (uint64_t{1} << (8 * width)) - 1;
  for (uint64_t i = 0; i < n; ++i) {
    const uint32_t r = rng.Below(100);
    uint64_t s = r < 90 ? rng.Below(width == 1 ? 24 : 600) : r < 97 ? rng.Next() % (top + 1) : top - rng.Below(3);
    v[i] = static_cast<uint32_t>(s > top ? top : s);
  }
  return v;
}

std::vector<uint8_t> PlanarBytes(const std::vector<uint32_t>& sym, unsigned width) {
  std::vector<uint8_t> b(sym.size() * width);
  for (size_t i = 0; i < sym.size(); ++i) {
    for (unsigned k = 0; k < width; ++k) b[k * sym.size() + i] = static_cast<uint8_t>(sym[i] >> (8 * k));
  }
  return b;
}

// Decodes `blob` at every SIMD level the CPU has (and 1 and 2 threads) and checks all give the
// scalar level's bytes; returns the scalar bytes (empty when it does not decode).
std::vector<uint8_t> CheckLevelsAgree(const std::vector<uint8_t>& blob, size_t nbytes, const char* what) {
  using udc::simd::Level;
  std::vector<uint8_t> want, got;
  udc::simd::SetCap(Level::kScalar);
  CHECK(udc::simd::Active() == Level::kScalar);
  const udc::Code code = DecodeCode(blob, nbytes, &want, 1);
  CHECK(code == udc::Code::kOk);
  for (Level level : {Level::kScalar, Level::kAvx2, Level::kAvx512}) {
    if (static_cast<int>(level) > static_cast<int>(udc::simd::Detected())) continue;
    udc::simd::SetCap(level);
    for (int threads : {1, 2}) {
      CHECK(DecodeCode(blob, nbytes, &got, threads) == code);
      if (got != want) {
        ++g_failures;
        std::fprintf(stderr, "%s: level %s, %d thread(s) differs from the scalar path\n", what,
                     udc::simd::Name(level), threads);
      }
    }
  }
  udc::simd::SetCap(Level::kAvx512);
  return code == udc::Code::kOk ? want : std::vector<uint8_t>();
}

// The scalar and scalar_channel quantizers, FLOAT and FLOAT16, widths 1/2/4, odd lengths
// (around the 8- and 16-element vectors), steps that overflow binary16 and binary32 or give
// subnormals; scalar_channel with R = 1 (steps read per element) and R > 1 (runs).
void TestSimdDequantize() {
  std::printf("simd: detected %s\n", udc::simd::Name(udc::simd::Detected()));
  TestRng rng{12345};
  const uint64_t lengths[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1031};
  const float steps[] = {0.0173f, 1e-3f, 3.0e34f, 1e-41f, 700.0f};
  int cases = 0;
  for (uint64_t n : lengths) {
    for (unsigned width : {1u, 2u, 4u}) {
      for (uint8_t dtype : {uint8_t{1}, uint8_t{10}}) {
        const std::vector<uint32_t> sym = TestSymbols(rng, n, width);
        BlobSpec s;
        s.quantizer = 1;
        s.dtype = dtype;
        s.symbol_width = static_cast<uint8_t>(width);
        s.shape = {n};
        s.step = steps[rng.Below(5)];
        s.seed = rng.Next();
        s.payload = PlanarBytes(sym, width);
        CheckLevelsAgree(MakeBlob(s), n * (dtype == 1 ? 4 : 2), "scalar");
        // scalar_channel: shape {C, R} along axis 0 (runs of R) and axis 1 (R = 1).
        for (uint64_t r : {uint64_t{1}, uint64_t{5}, uint64_t{16}, uint64_t{37}}) {
          if (n % r != 0) continue;
          const uint64_t c = n / r;
          for (uint8_t axis : {uint8_t{0}, uint8_t{1}}) {
            BlobSpec ch = s;
            ch.quantizer = 6;
            ch.shape = {c, r};
            ch.step = 1.0f;
            ch.params = {axis};
            for (uint64_t k = 0; k < (axis == 0 ? c : r); ++k) {
              const float st = k % 3 == 0 ? steps[rng.Below(3)] : 0.01f * static_cast<float>(k + 1);
              Put(ch.params, FloatBits(st), 4);
            }
            CheckLevelsAgree(MakeBlob(ch), n * (dtype == 1 ? 4 : 2), "scalar_channel");
            ++cases;
          }
        }
      }
    }
  }
  // One tensor large enough for ParallelFor to split it (chunk edges inside vectors).
  const uint64_t n = (uint64_t{1} << 20) + 37;
  BlobSpec s;
  s.quantizer = 1;
  s.dtype = 10;
  s.symbol_width = 2;
  s.shape = {n};
  s.step = 0.02f;
  s.seed = 7;
  s.payload = PlanarBytes(TestSymbols(rng, n, 2), 2);
  CheckLevelsAgree(MakeBlob(s), 2 * n, "scalar, 2^20 + 37");
  CHECK(cases > 100);
}

// The rans coder (FORMAT.md 5.3) at every SIMD level: random symbols encoded with forced
// parameters (the vector decoder takes 8 lanes, prob_bits <= 12, width <= 2; the others and
// the rounds where some lanes are done go through the scalar loop), lengths around the lane
// and chunk boundaries; the whole decode and RansDecode agree with the scalar level.
void TestSimdRans() {
  using udc::simd::Level;
  TestRng rng{777};
  const uint64_t lengths[] = {0, 1, 7, 8, 9, 63, 64 * 8 + 3, 256 * 8, 256 * 8 + 1, 256 * 8 * 3 + 13, 40000, 70001};
  int cases = 0;
  for (uint64_t n : lengths) {
    for (unsigned width : {1u, 2u, 4u}) {
      const std::vector<uint32_t> sym = TestSymbols(rng, n, width);
      for (unsigned lanes : {8u, 4u, 5u}) {
        for (unsigned contexts : {1u, 6u, 16u}) {
          if (lanes != 8 && contexts == 6) continue;
          udc::RansParams forced;
          forced.lanes = lanes;
          forced.contexts = contexts;
          forced.shift = 1 + rng.Below(8);
          forced.prob_bits = contexts == 16 ? 13 - (n & 1) : 10 + rng.Below(3);  // 12 and 13 at the edge
          std::vector<uint8_t> payload;
          const udc::Status st = udc::RansEncode(sym.data(), n, width, forced, &payload);
          if (!st.ok()) {
            ++g_failures;
            std::fprintf(stderr, "RansEncode n=%llu width %u: %s\n", static_cast<unsigned long long>(n), width,
                         st.message().c_str());
            continue;
          }
          std::vector<uint32_t> want(n), got(n);
          udc::simd::SetCap(Level::kScalar);
          CHECK(udc::RansDecode(payload.data(), payload.size(), n, width, want.data()).ok());
          CHECK(want == sym);
          udc::simd::SetCap(Level::kAvx512);
          CHECK(udc::RansDecode(payload.data(), payload.size(), n, width, got.data()).ok());
          CHECK(got == sym);
          // A corrupt payload is rejected at every level: one word flipped, one byte cut.
          if (payload.size() > 40) {
            std::vector<uint8_t> bad = payload;
            bad[bad.size() - 3] ^= 0x5A;
            udc::simd::SetCap(Level::kScalar);
            const bool scalar_ok = udc::RansDecode(bad.data(), bad.size(), n, width, want.data()).ok();
            udc::simd::SetCap(Level::kAvx512);
            CHECK(udc::RansDecode(bad.data(), bad.size(), n, width, got.data()).ok() == scalar_ok);
            if (scalar_ok) CHECK(got == want);
            bad = payload;
            bad.pop_back();
            CHECK(!udc::RansDecode(bad.data(), bad.size(), n, width, got.data()).ok());
          }
          BlobSpec s;
          s.quantizer = 1;
          s.coder = 3;
          s.dtype = width == 1 ? 10 : 1;
          s.symbol_width = static_cast<uint8_t>(width);
          s.shape = {n};
          s.step = 0.01f;
          s.seed = rng.Next();
          s.payload = payload;
          CheckLevelsAgree(MakeBlob(s), n * (width == 1 ? 2 : 4), "scalar + rans");
          ++cases;
        }
      }
    }
  }
  udc::simd::SetCap(Level::kAvx512);
  CHECK(cases > 100);
}

int main(int argc, char** argv) {
  TestCrc32();
  TestZigzag();
  TestDither();
  TestHalf();
  TestDecodeGood();
  TestThreadsBitIdentical();
  TestRejects();
  TestCApi();
  TestDecodeOptionsGolden(argc > 1 ? argv[1] : nullptr);
  TestDecodeOptionsStruct();
  TestDecodeOptionsThreads();
  TestRangeCoder();
  TestRangeWidePeriod();
  TestLatticeKnownValues();
  TestLatticeThreadsBitIdentical();
  TestLatticeRejects();
  TestScalarCodewordTable();
  TestPQ();
  TestScalarChannel();
  TestSimdDequantize();
  TestSimdRans();
  std::printf("%d checks, %d failures\n", g_checks, g_failures);
  return g_failures == 0 ? 0 : 1;
}
