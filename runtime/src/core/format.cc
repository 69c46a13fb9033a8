#include "core/format.h"

#include <cstdio>
#include <string>

namespace udc {
namespace {

// Slicing-by-8 tables for the reflected polynomial 0xEDB88320, built at compile time.
struct CrcTables {
  uint32_t t[8][256];
};

constexpr CrcTables MakeCrcTables() {
  CrcTables tables{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (0xEDB88320u ^ (c >> 1)) : (c >> 1);
    tables.t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) {
      uint32_t prev = tables.t[s - 1][i];
      tables.t[s][i] = tables.t[0][prev & 0xFFu] ^ (prev >> 8);
    }
  }
  return tables;
}

constexpr CrcTables kCrc = MakeCrcTables();

std::string U64(uint64_t v) { return std::to_string(v); }

}  // namespace

size_t DTypeSize(uint8_t dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::kFloat: return 4;
    case DType::kUInt8: return 1;
    case DType::kInt8: return 1;
    case DType::kInt32: return 4;
    case DType::kFloat16: return 2;
  }
  return 0;
}

const char* DTypeName(uint8_t dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::kFloat: return "FLOAT";
    case DType::kUInt8: return "UINT8";
    case DType::kInt8: return "INT8";
    case DType::kInt32: return "INT32";
    case DType::kFloat16: return "FLOAT16";
  }
  return "?";
}

std::string FloatString(float f) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(f));
  return buf;
}

uint32_t Crc32(const uint8_t* data, size_t len, uint32_t crc) {
  uint32_t c = ~crc;
  while (len >= 8) {
    uint32_t lo = c ^ LoadU32(data);
    uint32_t hi = LoadU32(data + 4);
    c = kCrc.t[7][lo & 0xFF] ^ kCrc.t[6][(lo >> 8) & 0xFF] ^ kCrc.t[5][(lo >> 16) & 0xFF] ^
        kCrc.t[4][lo >> 24] ^ kCrc.t[3][hi & 0xFF] ^ kCrc.t[2][(hi >> 8) & 0xFF] ^
        kCrc.t[1][(hi >> 16) & 0xFF] ^ kCrc.t[0][hi >> 24];
    data += 8;
    len -= 8;
  }
  while (len--) c = kCrc.t[0][(c ^ *data++) & 0xFF] ^ (c >> 8);
  return ~c;
}

uint32_t BlobChecksum(const uint8_t* blob, size_t blob_len) {
  uint32_t crc = Crc32(blob, kChecksumOffset);
  return Crc32(blob + kChecksumOffset + 4, blob_len - (kChecksumOffset + 4), crc);
}

Status ParseHeader(const uint8_t* blob, size_t blob_len, Header* h) {
  if (blob_len < kFixedHeaderSize) {
    return Status(Code::kTruncated, "blob has " + U64(blob_len) + " bytes, fewer than the " +
                                        U64(kFixedHeaderSize) + "-byte fixed header");
  }
  if (std::memcmp(blob, kMagic, sizeof kMagic) != 0) {
    char got[64];
    std::snprintf(got, sizeof got, "%02x %02x %02x %02x", blob[0], blob[1], blob[2], blob[3]);
    return Status(Code::kBadMagic, std::string("magic is ") + got + ", expected 55 44 43 42 (\"UDCB\")");
  }
  *h = Header();
  h->version = LoadU16(blob + 4);
  if (h->version != kFormatVersion) {
    return Status(Code::kUnsupportedVersion, "format version " + U64(h->version) +
                                                 " is not supported (this decoder reads version " +
                                                 U64(kFormatVersion) + ")");
  }
  h->quantizer = blob[6];
  h->coder = blob[7];
  h->dtype = blob[8];
  h->ndim = blob[9];
  h->symbol_width = blob[10];
  h->flags = blob[11];
  h->checksum = LoadU32(blob + 12);
  h->step = LoadF32(blob + 16);
  h->params_len = LoadU32(blob + 20);
  h->seed = LoadU64(blob + 24);
  h->payload_len = LoadU64(blob + 32);

  if ((h->flags & ~kFlagPadded) != 0) {
    return Status(Code::kBadHeader, "flags is " + U64(h->flags) + ": only bit 0 (padded payload) is defined");
  }
  if (h->ndim > kMaxNdim) {
    return Status(Code::kBadHeader, "ndim is " + U64(h->ndim) + ", at most " + U64(kMaxNdim));
  }

  // Declared length 40 + 8*ndim + P + L; L is a u64, so check the sum for overflow.
  const uint64_t shape_end = kFixedHeaderSize + 8u * uint64_t{h->ndim};
  const uint64_t params_end = shape_end + h->params_len;
  uint64_t declared = 0;
  if (__builtin_add_overflow(params_end, h->payload_len, &declared)) {
    return Status(Code::kTruncated, "blob declares payload_len " + U64(h->payload_len) +
                                        ", more bytes than can exist; it has " + U64(blob_len));
  }
  if (uint64_t{blob_len} < declared) {
    return Status(Code::kTruncated,
                  "blob declares " + U64(declared) + " bytes but has " + U64(blob_len) + " (40 + 8*ndim " +
                      U64(h->ndim) + " + params_len " + U64(h->params_len) + " + payload_len " +
                      U64(h->payload_len) + ")");
  }
  if (uint64_t{blob_len} > declared) {
    return Status(Code::kTruncated, "blob declares " + U64(declared) + " bytes but has " + U64(blob_len) +
                                        " (" + U64(blob_len - declared) + " trailing bytes)");
  }

  bool any_zero = false;
  for (unsigned d = 0; d < h->ndim; ++d) {
    h->shape[d] = LoadU64(blob + kFixedHeaderSize + 8 * d);
    if (h->shape[d] > kMaxDim) {
      return Status(Code::kLimitExceeded, "shape[" + U64(d) + "] is " + U64(h->shape[d]) +
                                              ", above the limit 2^40");
    }
    if (h->shape[d] == 0) any_zero = true;
  }
  // numel is the exact product: 0 if any dimension is 0, else a monotone running product.
  uint64_t numel = 1;
  if (any_zero) {
    numel = 0;
  } else {
    for (unsigned d = 0; d < h->ndim; ++d) {
      if (__builtin_mul_overflow(numel, h->shape[d], &numel) || numel > kMaxNumel) {
        return Status(Code::kLimitExceeded, "numel of the shape exceeds the limit 2^34 (at shape[" +
                                                U64(d) + "] = " + U64(h->shape[d]) + ")");
      }
    }
  }
  h->numel = numel;
  h->params = blob + shape_end;
  h->payload = blob + params_end;
  h->coded_len = h->payload_len;
  if (h->flags & kFlagPadded) {
    if (h->payload_len < 4) {
      return Status(Code::kBadHeader, "padded payload has " + U64(h->payload_len) + " bytes, less than its 4-byte pad count");
    }
    const uint64_t pad = LoadU32(h->payload + h->payload_len - 4);
    if (pad > h->payload_len - 4) {
      return Status(Code::kBadHeader, "pad count " + U64(pad) + " exceeds the " + U64(h->payload_len - 4) +
                                          " payload bytes before it");
    }
    h->coded_len = h->payload_len - 4 - pad;
    for (uint64_t i = h->coded_len; i < h->payload_len - 4; ++i) {
      if (h->payload[i] != 0) {
        return Status(Code::kBadHeader, "pad byte " + U64(i - h->coded_len) + " of " + U64(pad) + " is not 0");
      }
    }
  }
  return Status::Ok();
}

}  // namespace udc
