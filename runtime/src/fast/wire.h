// wire.h - the protobuf wire format (protobuf.dev/programming-guides/encoding), as much of
// it as the fast loader needs to read an ONNX ModelProto and write an edited copy without
// libprotobuf: a message is a sequence of fields (number, wire type, value); the loader
// reads the few fields it needs and copies every other field byte for byte.
//
// Every message is untrusted: each length is checked against the bytes left, varints are
// at most 10 bytes, and the deprecated group wire types are refused. No function reads
// outside [begin, end).
#ifndef UDC_FAST_WIRE_H_
#define UDC_FAST_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "core/status.h"

namespace udc {
namespace fast {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

// One field of a message. `whole` is the field as it lies in the message (tag included),
// for copying it unchanged; `value` is the payload of a kLen field (else empty) and
// `number_value` the value of a kVarint field.
struct Field {
  uint32_t number = 0;
  uint32_t type = 0;
  uint64_t number_value = 0;
  std::string_view value;
  std::string_view whole;
};

// Reads the fields of one message in order.
class Reader {
 public:
  // `what` names the message in error messages ("ModelProto", "NodeProto 'conv1'", ...).
  Reader(std::string_view message, std::string what) : p_(message.data()), end_(message.data() + message.size()),
                                                        what_(std::move(what)) {}

  // Next field into *f; *done = true (and Ok) at the end of the message.
  Status Next(Field* f, bool* done) {
    *done = p_ == end_;
    if (*done) return Status::Ok();
    const char* start = p_;
    uint64_t tag = 0;
    UDC_RETURN_IF_ERROR(Varint(&tag));
    f->number = static_cast<uint32_t>(tag >> 3);
    f->type = static_cast<uint32_t>(tag & 7);
    f->number_value = 0;
    f->value = std::string_view();
    if (f->number == 0 || (tag >> 3) > 0x1fffffff) return Bad("field number " + std::to_string(tag >> 3));
    switch (f->type) {
      case kVarint:
        UDC_RETURN_IF_ERROR(Varint(&f->number_value));
        break;
      case kFixed64:
        UDC_RETURN_IF_ERROR(Skip(8));
        break;
      case kFixed32:
        UDC_RETURN_IF_ERROR(Skip(4));
        break;
      case kLen: {
        uint64_t n = 0;
        UDC_RETURN_IF_ERROR(Varint(&n));
        if (n > static_cast<uint64_t>(end_ - p_)) {
          return Bad("field " + std::to_string(f->number) + " declares " + std::to_string(n) + " bytes, " +
                     std::to_string(end_ - p_) + " are left");
        }
        f->value = std::string_view(p_, static_cast<size_t>(n));
        p_ += n;
        break;
      }
      default:
        return Bad("field " + std::to_string(f->number) + " has wire type " + std::to_string(f->type) +
                   " (groups and unknown types are not ONNX)");
    }
    f->whole = std::string_view(start, static_cast<size_t>(p_ - start));
    return Status::Ok();
  }

  // Reads a packed run of varints (a kLen field's value), calling fn(value) for each.
  template <typename Fn>
  static Status ForEachPacked(std::string_view packed, const std::string& what, Fn&& fn) {
    Reader r(packed, what);
    while (r.p_ != r.end_) {
      uint64_t v = 0;
      UDC_RETURN_IF_ERROR(r.Varint(&v));
      UDC_RETURN_IF_ERROR(fn(v));
    }
    return Status::Ok();
  }

 private:
  Status Varint(uint64_t* out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p_ == end_) return Bad("a varint runs past the end");
      const uint8_t b = static_cast<uint8_t>(*p_++);
      if (shift == 63 && b > 1) return Bad("a varint overflows 64 bits");
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *out = v;
        return Status::Ok();
      }
    }
    return Bad("a varint is longer than 10 bytes");
  }
  Status Skip(size_t n) {
    if (static_cast<size_t>(end_ - p_) < n) return Bad("a fixed-width field runs past the end");
    p_ += n;
    return Status::Ok();
  }
  Status Bad(const std::string& why) const { return Status(Code::kBadModel, what_ + ": " + why); }

  const char* p_;
  const char* end_;
  std::string what_;
};

// Calls fn(field) -> Status for each field of `message` in order; the first error (the
// reader's or fn's) ends the walk. `what` names the message in the reader's errors. With
// `stop`, the walk also ends (Ok) once *stop is true when a field has been read.
template <typename Fn>
Status ForEachField(std::string_view message, std::string what, Fn&& fn, const bool* stop = nullptr) {
  Reader r(message, std::move(what));
  for (;;) {
    Field f;
    bool done = false;
    UDC_RETURN_IF_ERROR(r.Next(&f, &done));
    if (done || (stop != nullptr && *stop)) return Status::Ok();
    UDC_RETURN_IF_ERROR(fn(f));
  }
}

// Appends fields to a message.
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out) {}
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<char>(v));
  }
  void Tag(uint32_t number, WireType type) { Varint((static_cast<uint64_t>(number) << 3) | type); }
  void VarintField(uint32_t number, uint64_t v) {
    Tag(number, kVarint);
    Varint(v);
  }
  void LenField(uint32_t number, std::string_view bytes) {
    Tag(number, kLen);
    Varint(bytes.size());
    out_->append(bytes.data(), bytes.size());
  }
  void Raw(std::string_view bytes) { out_->append(bytes.data(), bytes.size()); }

 private:
  std::string* out_;
};

}  // namespace fast
}  // namespace udc

#endif  // UDC_FAST_WIRE_H_
