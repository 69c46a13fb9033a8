// plan.h - host helpers that build a ReconPlan (core/reconstruct.h) from a validated header,
// and the host emulation of the device reconstruction (tests compare it with Dequantize).
#ifndef UDC_CORE_PLAN_H_
#define UDC_CORE_PLAN_H_

#include <cstdint>

#include "core/format.h"
#include "core/reconstruct.h"

namespace udc {

// The fields every plan shares: kind (the header's quantizer id: Recon::k<Kind> = id, see
// quantizers/list.h), width, dtype, numel, seed, step; nsym symbols; units work items;
// identity stream order.
ReconPlan BasePlan(const Header& h, uint64_t nsym, uint64_t units);

// Stream order of the lattices and pq: order[ndim] (a permutation Validate checked).
void SetStreamOrder(const Header& h, const uint8_t* order, ReconPlan* plan);

// Every unit of the plan, one after the other on this thread.
void ReconstructOnHost(const ReconPlan& plan, const uint8_t* symbols, const uint8_t* params, uint8_t* out);

}  // namespace udc

#endif  // UDC_CORE_PLAN_H_
