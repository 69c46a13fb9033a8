#include "core/plan.h"

namespace udc {

ReconPlan BasePlan(const Header& h, Recon kind, uint64_t nsym, uint64_t units) {
  ReconPlan p;
  p.kind = kind;
  p.width = h.symbol_width;
  p.half = h.dtype == static_cast<uint8_t>(DType::kFloat16) ? 1 : 0;
  p.ndim = h.ndim;
  p.identity = 1;
  p.numel = h.numel;
  p.nsym = nsym;
  p.units = units;
  p.seed = h.seed;
  p.step = h.step;
  return p;
}

void SetStreamOrder(const Header& h, const uint8_t* order, ReconPlan* p) {
  uint64_t stride[kMaxNdim];
  uint64_t s = 1;
  for (int d = static_cast<int>(h.ndim) - 1; d >= 0; --d) {
    stride[d] = s;
    s *= h.shape[d];
  }
  p->identity = 1;
  for (unsigned d = 0; d < h.ndim; ++d) {
    p->tshape[d] = h.shape[order[d]];
    p->tstride[d] = stride[order[d]];
    if (order[d] != d) p->identity = 0;
  }
}

void ReconstructOnHost(const ReconPlan& plan, const uint8_t* symbols, const uint8_t* params, uint8_t* out) {
  for (uint64_t u = 0; u < plan.units; ++u) ReconstructUnit(plan, symbols, params, out, u);
}

}  // namespace udc
