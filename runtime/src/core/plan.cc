#include "core/plan.h"

#include "core/stream_order.h"

namespace udc {

ReconPlan BasePlan(const Header& h, uint64_t nsym, uint64_t units) {
  ReconPlan p;
  p.kind = static_cast<Recon>(h.quantizer);  // the registry found h.quantizer in quantizers/list.h
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
  const StreamOrder walk(h, order);
  p->identity = walk.identity() ? 1 : 0;
  for (int d = 0; d < walk.ndim(); ++d) {
    p->tshape[d] = walk.tshape(d);
    p->tstride[d] = walk.tstride(d);
  }
}

void ReconstructOnHost(const ReconPlan& plan, const uint8_t* symbols, const uint8_t* params, uint8_t* out) {
  for (uint64_t u = 0; u < plan.units; ++u) ReconstructUnit(plan, symbols, params, out, u);
}

}  // namespace udc
