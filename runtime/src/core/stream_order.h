// stream_order.h - the walk of the lattice and pq quantizers (FORMAT.md 4.2, 4.7): stream
// position i is element i of the tensor transposed to the stored axis order, written back
// at its row-major offset in the output.
//
//   StreamOrder(h, order): the transposed shape and each of its axes' output stride
//   Cursor(order, begin).Next(): output offsets of positions begin, begin + 1, ... (an
//   odometer, no division per element); ReconPlan copies the same shape and strides for
//   the element-parallel walk of core/reconstruct.h.
#ifndef UDC_CORE_STREAM_ORDER_H_
#define UDC_CORE_STREAM_ORDER_H_

#include <cstdint>

#include "core/format.h"

namespace udc {

// Output element offset of each stream position, for the stored axis order.
class StreamOrder {
 public:
  StreamOrder(const Header& h, const uint8_t* order) : ndim_(h.ndim) {
    uint64_t stride[kMaxNdim];
    uint64_t s = 1;
    for (int d = ndim_ - 1; d >= 0; --d) {
      stride[d] = s;
      s *= h.shape[d];
    }
    identity_ = true;
    for (int d = 0; d < ndim_; ++d) {
      tshape_[d] = h.shape[order[d]];
      tstride_[d] = stride[order[d]];
      identity_ = identity_ && order[d] == d;
    }
  }
  bool identity() const { return identity_; }
  int ndim() const { return ndim_; }
  uint64_t tshape(int d) const { return tshape_[d]; }
  uint64_t tstride(int d) const { return tstride_[d]; }

  // Positions from `begin` on: Next() returns the output offset of begin, begin + 1, ...
  class Cursor {
   public:
    Cursor(const StreamOrder& o, uint64_t begin) : o_(o) {
      uint64_t rest = begin;
      for (int d = o_.ndim_ - 1; d >= 0; --d) {
        idx_[d] = o_.tshape_[d] ? rest % o_.tshape_[d] : 0;
        rest = o_.tshape_[d] ? rest / o_.tshape_[d] : 0;
        offset_ += idx_[d] * o_.tstride_[d];
      }
    }
    uint64_t Next() {
      const uint64_t out = offset_;
      for (int d = o_.ndim_ - 1; d >= 0; --d) {  // odometer step
        offset_ += o_.tstride_[d];
        if (++idx_[d] < o_.tshape_[d]) break;
        offset_ -= idx_[d] * o_.tstride_[d];
        idx_[d] = 0;
      }
      return out;
    }

   private:
    const StreamOrder& o_;
    uint64_t idx_[kMaxNdim] = {};
    uint64_t offset_ = 0;
  };

 private:
  int ndim_;
  bool identity_ = true;
  uint64_t tshape_[kMaxNdim] = {};
  uint64_t tstride_[kMaxNdim] = {};
};

}  // namespace udc

#endif  // UDC_CORE_STREAM_ORDER_H_
