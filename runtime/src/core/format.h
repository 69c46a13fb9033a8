// format.h - the fixed part of an onnx-udc blob (FORMAT.md section 2): header parsing,
// structural validation, limits and the CRC-32 checksum.
//
//   offset  size  field
//   0       4     magic "UDCB"          20  4    params_len P
//   4       2     version (1)           24  8    seed
//   6       1     quantizer id          32  8    payload_len L
//   7       1     coder id              40  8*ndim shape (u64, outermost first)
//   8       1     dtype (ONNX code)     ..  P    params
//   9       1     ndim (0..8)           ..  L    payload
//   10      1     symbol_width (1/2/4)
//   11      1     flags (bit 0: padded payload; the others 0)
//   12      4     checksum: CRC-32 of blob[0:12] + blob[16:]
//   16      4     step (f32)
#ifndef UDC_CORE_FORMAT_H_
#define UDC_CORE_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/status.h"

namespace udc {

constexpr uint8_t kMagic[4] = {0x55, 0x44, 0x43, 0x42};  // "UDCB"
constexpr uint16_t kFormatVersion = 1;
constexpr size_t kFixedHeaderSize = 40;
constexpr unsigned kMaxNdim = 8;
constexpr size_t kChecksumOffset = 12;

// Limits of FORMAT.md section 2, enforced before anything is allocated.
constexpr uint64_t kMaxDim = uint64_t{1} << 40;
constexpr uint64_t kMaxNumel = uint64_t{1} << 34;
constexpr uint64_t kMaxSymbolBytes = uint64_t{1} << 36;

// flags bit 0: the payload section is coded || N zero bytes || N (u32): FORMAT.md section 2.
constexpr uint8_t kFlagPadded = 0x01;
// Expansion limit (FORMAT.md section 2): a blob of n bytes decodes to at most
// kExpansionFreeBytes + kExpansionRatio * n bytes (tensor and symbol stream alike), so what a
// decoder allocates is bounded by the bytes it was given.
constexpr uint64_t kExpansionFreeBytes = uint64_t{1} << 20;
constexpr uint64_t kExpansionRatio = 1024;
// The largest decoded size a blob of blob_len bytes may declare (saturating).
inline uint64_t ExpansionLimit(uint64_t blob_len) {
  return blob_len > (UINT64_MAX - kExpansionFreeBytes) / kExpansionRatio ? UINT64_MAX
                                                                        : kExpansionFreeBytes + kExpansionRatio * blob_len;
}

// ONNX TensorProto.DataType codes of the element types a blob may decode to.
enum class DType : uint8_t {
  kFloat = 1,
  kUInt8 = 2,
  kInt8 = 3,
  kInt32 = 6,
  kFloat16 = 10,
};

// FORMAT.md section 1: the decode ops of domain ai.onnx_udc, one per decoded element type
// (the custom ops register these, the C fast loader removes them).
inline constexpr const char* kDecodeDomain = "ai.onnx_udc";
struct DecodeOpType {
  const char* name;
  DType dtype;
};
inline constexpr DecodeOpType kDecodeOps[] = {
    {"Decode", DType::kFloat},      {"DecodeUInt8", DType::kUInt8},       {"DecodeInt8", DType::kInt8},
    {"DecodeInt32", DType::kInt32}, {"DecodeFloat16", DType::kFloat16},
};

// Element size in bytes, or 0 for a code that is not one of the five above.
size_t DTypeSize(uint8_t dtype);
// "FLOAT", "UINT8", ...; "?" for an unknown code.
const char* DTypeName(uint8_t dtype);

// The parsed header plus views into the blob. Pointers stay valid as long as the blob.
struct Header {
  uint16_t version = 0;
  uint8_t quantizer = 0;
  uint8_t coder = 0;
  uint8_t dtype = 0;
  uint8_t ndim = 0;
  uint8_t symbol_width = 0;
  uint8_t flags = 0;
  uint32_t checksum = 0;
  float step = 0.0f;
  uint32_t params_len = 0;
  uint64_t seed = 0;
  uint64_t payload_len = 0;   // the payload section L as stored (padding included)
  uint64_t coded_len = 0;     // the bytes the coder reads: L, or L - 4 - N when padded
  uint64_t shape[kMaxNdim] = {};
  uint64_t numel = 0;          // product of shape (1 for ndim 0)
  const uint8_t* params = nullptr;
  const uint8_t* payload = nullptr;  // the coded bytes, coded_len of them

  // numel * symbol_width: what the coder must produce. Valid once symbol_width is checked.
  uint64_t symbol_bytes() const { return numel * symbol_width; }
  // numel * element size (0 for an unknown dtype).
  uint64_t element_bytes() const { return numel * DTypeSize(dtype); }
};

// Parses and checks everything that does not depend on the quantizer or coder, in this
// order: length >= 40 (kTruncated), magic (kBadMagic), version (kUnsupportedVersion),
// flags and ndim (kBadHeader), exact declared length 40+8*ndim+P+L (kTruncated, also for
// trailing bytes), the padding of a padded payload (kBadHeader), each dimension <= 2^40 and
// numel <= 2^34 (kLimitExceeded).
Status ParseHeader(const uint8_t* blob, size_t blob_len, Header* header);

// CRC-32 (zlib / ISO-HDLC). Chains like zlib.crc32(data, crc): Crc32(b, n2, Crc32(a, n1)).
uint32_t Crc32(const uint8_t* data, size_t len, uint32_t crc = 0);

// CRC-32 over blob[0:12] followed by blob[16:]. blob_len must be >= 16.
uint32_t BlobChecksum(const uint8_t* blob, size_t blob_len);

// Little-endian loads.
inline uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t LoadU32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint64_t LoadU64(const uint8_t* p) { return uint64_t{LoadU32(p)} | (uint64_t{LoadU32(p + 4)} << 32); }
// "%.9g" of a float: enough digits to round-trip, for error messages.
std::string FloatString(float f);

inline float LoadF32(const uint8_t* p) {
  uint32_t bits = LoadU32(p);
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

}  // namespace udc

#endif  // UDC_CORE_FORMAT_H_
