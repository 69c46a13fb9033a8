// ort_include.h - includes onnxruntime's C++ API in manual-init mode: the library never
// links libonnxruntime; RegisterCustomOps calls Ort::InitApi with the host's API table.
#ifndef UDC_ORT_ORT_INCLUDE_H_
#define UDC_ORT_ORT_INCLUDE_H_

#ifndef ORT_API_MANUAL_INIT
#define ORT_API_MANUAL_INIT
#endif
#include <onnxruntime_cxx_api.h>

#endif  // UDC_ORT_ORT_INCLUDE_H_
