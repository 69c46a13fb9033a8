// list.h - THE list of quantizers (FORMAT.md section 4). Everything that enumerates
// quantizers follows from it:
//
//   quantizers.cc      the registry (FindQuantizer, QuantizerName, KnownQuantizers: the
//                      "known: 0 raw, ..." of UNKNOWN_QUANTIZER)
//   reconstruct.h      enum Recon (Recon::k<Kind> = id) and the switch of ReconstructUnit,
//                      shared by the CUDA kernel and its host twin (UDC_HD)
//
//   X(id, Kind, "name", factory, Unit)
//     id       the header's quantizer id (0..255); also the value of Recon::k<Kind>
//     Kind     the Recon enumerator's suffix
//     "name"   the quantizer's name in messages
//     factory  host function returning the strategy (const Quantizer&), declared below
//     Unit     the work item of core/reconstruct.h: Unit::Run<W>(plan, symbols, params, out, u)
//
// Adding a dithered lattice: its geometry G in lattice_math.h and one line here
// (factory lattice::Strategy<G>, Unit recon::LatticeUnit<G>). Any other quantizer: its
// strategy in a new quantizers/*.cc (+ its line in CMakeLists.txt), its factory declared
// below, a Unit in reconstruct.h and one line here.
//
// Safe to include from nvcc-compiled code: only macros and host declarations.
#ifndef UDC_CORE_QUANTIZERS_LIST_H_
#define UDC_CORE_QUANTIZERS_LIST_H_

// clang-format off
#define UDC_QUANTIZERS(X)                                                                          \
  X(0, Raw,    "raw",             RawQuantizer,                    recon::RawUnit)                 \
  X(1, Scalar, "dithered_scalar", DitheredScalarQuantizer,         recon::ScalarUnit)              \
  X(2, A2,     "a2",              lattice::Strategy<lattice::A2>,  recon::LatticeUnit<lattice::A2>) \
  X(3, D4,     "d4",              lattice::Strategy<lattice::D4>,  recon::LatticeUnit<lattice::D4>) \
  X(4, E8,     "e8",              lattice::Strategy<lattice::E8>,  recon::LatticeUnit<lattice::E8>) \
  X(5, PQ,     "pq",              PQQuantizer,                     recon::PQUnit)                  \
  X(6, ScalarChannel, "scalar_channel", ScalarChannelQuantizer,    recon::ScalarChannelUnit)
// clang-format on

namespace udc {

class Quantizer;  // core/quantizers.h

// The factories of the list (host only).
const Quantizer& RawQuantizer();             // quantizers/raw.cc
const Quantizer& DitheredScalarQuantizer();  // quantizers/dithered_scalar.cc
const Quantizer& PQQuantizer();              // quantizers/pq.cc
const Quantizer& ScalarChannelQuantizer();   // quantizers/scalar_channel.cc
namespace lattice {
template <class G>
const Quantizer& Strategy();                 // quantizers/lattice.h, one per geometry G
}  // namespace lattice

}  // namespace udc

#endif  // UDC_CORE_QUANTIZERS_LIST_H_
