// Quantizer 6, dithered uniform scalar with one step per channel (FORMAT.md 4.8).
//
//   params: axis u8 (< ndim) | step_c f32 [C = shape[axis]], each finite, positive, normal
//   symbol s_i (u32, planar) -> q = zigzag^-1(s_i) (i32)
//   c = (i / R) mod C, R = shape[axis+1] * .. * shape[ndim-1]
//   w_i = (float32(q) - Dither(seed, i)) * step_c   binary32, no FMA (-ffp-contract=off)
//   FLOAT: w_i    FLOAT16: round-to-nearest-even binary16 of w_i
//   header.step: the tensor's reference step (checked finite and > 0, not used to decode)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/dither.h"
#include "core/half.h"
#include "core/parallel.h"
#include "core/plan.h"
#include "core/quantizers.h"
#include "core/quantizers/scalar_kernels.h"
#include "core/symbols.h"

namespace udc {
namespace {

struct Params {
  unsigned axis = 0;
  uint64_t channels = 0;  // C = shape[axis]
  uint64_t inner = 1;     // R: elements of one channel's contiguous run
  const uint8_t* steps = nullptr;  // C little-endian binary32 steps

  float Step(uint64_t c) const { return LoadF32(steps + 4 * c); }
};

bool ValidStep(float s) { return std::isfinite(s) && s >= std::numeric_limits<float>::min(); }

// Validates h.params against h.shape; the only place params are read.
Status ParseParams(const Header& h, Params* p) {
  if (h.params_len < 1) {
    return Status(Code::kBadHeader, "params_len is 0, scalar_channel needs the axis and one step per channel");
  }
  p->axis = h.params[0];
  if (p->axis >= h.ndim) {
    return Status(Code::kBadHeader, "scalar_channel axis " + std::to_string(p->axis) + " is not below ndim " +
                                        std::to_string(h.ndim));
  }
  p->channels = h.shape[p->axis];
  p->inner = 1;
  if (h.numel != 0) {  // a factor of numel <= 2^34: no overflow (unused for an empty tensor)
    for (unsigned d = p->axis + 1; d < h.ndim; ++d) p->inner *= h.shape[d];
  }
  const uint64_t want = 1 + 4 * p->channels;  // channels <= 2^40: no overflow
  if (h.params_len != want) {
    return Status(Code::kBadHeader, "params_len is " + std::to_string(h.params_len) + ", scalar_channel with " +
                                        std::to_string(p->channels) + " channels needs " + std::to_string(want));
  }
  p->steps = h.params + 1;
  for (uint64_t c = 0; c < p->channels; ++c) {
    const float s = p->Step(c);
    if (!ValidStep(s)) {
      return Status(Code::kBadHeader, "scalar_channel step of channel " + std::to_string(c) + " is " +
                                          FloatString(s) + ", must be a finite, positive, normal float32");
    }
  }
  return Status::Ok();
}

// Elements [begin, end) as runs of the vector kernels (scalar_kernels.h): a run of one
// channel (constant step) when R > 1; when R == 1 consecutive elements take consecutive
// steps, so a run of channels c .. C - 1 reads its steps straight from params.
template <int W, bool kHalf>
void Run(const Header& h, const Params& p, const uint8_t* symbols, uint8_t* out, uint64_t begin, uint64_t end) {
  const uint64_t n = h.numel;
  const uint64_t seed = h.seed;
  uint64_t c = (begin / p.inner) % p.channels;  // channel of element `begin`
  uint64_t i = begin;
  if (p.inner == 1) {
    while (i < end) {
      const uint64_t stop = std::min(end, i + (p.channels - c));
      scalar_kernels::Run<W, kHalf, true>(symbols, n, seed, 0.0f, p.steps + 4 * c, i, stop, out);
      i = stop;
      c = 0;
    }
    return;
  }
  uint64_t r = begin % p.inner;  // position inside the channel's run
  while (i < end) {
    const uint64_t stop = std::min(end, i + (p.inner - r));
    scalar_kernels::Run<W, kHalf, false>(symbols, n, seed, p.Step(c), nullptr, i, stop, out);
    i = stop;
    r = 0;
    if (++c == p.channels) c = 0;
  }
}

template <bool kHalf>
void Dispatch(const Header& h, const Params& p, const uint8_t* symbols, uint8_t* out, const DecodeOptions& opt) {
  ParallelFor(h.numel, opt.max_threads, [&](uint64_t b, uint64_t e) {
    switch (h.symbol_width) {
      case 1: Run<1, kHalf>(h, p, symbols, out, b, e); break;
      case 2: Run<2, kHalf>(h, p, symbols, out, b, e); break;
      default: Run<4, kHalf>(h, p, symbols, out, b, e); break;
    }
  });
}

class ScalarChannel final : public Quantizer {
 public:
  Status Validate(const Header& h) const override {
    UDC_RETURN_IF_ERROR(CheckFloatDType(h, "the scalar_channel quantizer"));
    UDC_RETURN_IF_ERROR(CheckSymbolWidth(h));
    if (!std::isfinite(h.step) || !(h.step > 0.0f)) {
      return Status(Code::kBadHeader, "step is " + FloatString(h.step) +
                                          ", the scalar_channel quantizer needs a finite step > 0");
    }
    Params p;
    return ParseParams(h, &p);
  }

  void Dequantize(const Header& h, const uint8_t* symbols, uint8_t* out, const DecodeOptions& opt) const override {
    Params p;
    if (!ParseParams(h, &p).ok() || h.numel == 0) return;  // Validate succeeded; nothing to write
    if (h.dtype == static_cast<uint8_t>(DType::kFloat16)) {
      Dispatch<true>(h, p, symbols, out, opt);
    } else {
      Dispatch<false>(h, p, symbols, out, opt);
    }
  }

  void Plan(const Header& h, ReconPlan* plan) const override {
    Params p;
    (void)ParseParams(h, &p);  // succeeded in Validate
    *plan = BasePlan(h, h.numel, h.numel);
    plan->chan_inner = p.inner;
    plan->chan_count = p.channels;
    plan->chan_at = static_cast<uint64_t>(p.steps - h.params);
  }
};

}  // namespace

const Quantizer& ScalarChannelQuantizer() {
  static const ScalarChannel kScalarChannel;
  return kScalarChannel;
}

}  // namespace udc
