// register.cc - RegisterCustomOps, the entry point onnxruntime calls when the library is
// registered (SessionOptions.register_custom_ops_library / RegisterCustomOpsLibrary).
//
// The decode options (threads, max_output_bytes) are read here, from the session options
// the library is registered with (session config entries, else environment variables:
// ort/options.h). The 1.21 C API gives a kernel no access to its session's config, so the
// options travel with the ops: one domain "ai.onnx_udc" per distinct set of options, each
// created once per process and never freed (sessions keep raw pointers to it and to its
// ops, and it must outlive all of them). A process sees few distinct option sets.
#include <mutex>
#include <string>
#include <vector>

#include "core/format.h"
#include "ort/cpu_ops.h"
#include "ort/options.h"
#if defined(UDC_WITH_CUDA)
#include "ort/cuda_ops.h"
#endif

#define UDC_EXPORT __attribute__((visibility("default")))

namespace {

constexpr const char* kDomain = udc::kDecodeDomain;

// The newest API table the host offers, down to version 1 (for an error status only).
const OrtApi* AnyApi(const OrtApiBase* base) {
  for (uint32_t v = ORT_API_VERSION; v >= 1; --v) {
    if (const OrtApi* api = base->GetApi(v)) return api;
  }
  return nullptr;
}

struct OptionDomain {
  udc::DecodeOptions options;
  Ort::CustomOpDomain* domain;
};

// The domain whose ops decode with `options` (created at the first request).
Ort::CustomOpDomain* Domain(const udc::DecodeOptions& options) {
  static std::mutex mu;
  static auto* domains = new std::vector<OptionDomain>();  // intentionally leaked, see above
  std::lock_guard<std::mutex> lock(mu);
  for (const OptionDomain& d : *domains) {
    if (d.options.max_threads == options.max_threads && d.options.max_output_bytes == options.max_output_bytes) {
      return d.domain;
    }
  }
  auto* d = new Ort::CustomOpDomain(kDomain);  // intentionally leaked, see above
  udc::ort::RegisterCpuOps(*d, options);
#if defined(UDC_WITH_CUDA)
  udc::ort::RegisterCudaOps(*d, options);  // same op names, for CUDAExecutionProvider
#endif
  domains->push_back(OptionDomain{options, d});
  return d;
}

}  // namespace

extern "C" UDC_EXPORT OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
  if (api_base == nullptr) return nullptr;  // cannot even build an error status
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {
    const OrtApi* old = AnyApi(api_base);
    if (old == nullptr) return nullptr;
    const std::string msg = std::string("onnx_udc: this onnxruntime (") + api_base->GetVersionString() +
                            ") does not offer C API version " + std::to_string(ORT_API_VERSION) + ", which the library needs";
    return old->CreateStatus(ORT_FAIL, msg.c_str());
  }
  static const bool api_ready = (Ort::InitApi(api), true);  // thread-safe static init, once
  (void)api_ready;
  try {
    udc::DecodeOptions decode_options;
    std::string error;
    if (!udc::ort::ReadOpOptions(options, &decode_options, &error)) {
      return api->CreateStatus(ORT_INVALID_ARGUMENT, ("onnx_udc: " + error).c_str());
    }
    Ort::UnownedSessionOptions session_options(options);
    session_options.Add(*Domain(decode_options));
    return nullptr;
  } catch (const Ort::Exception& e) {
    return api->CreateStatus(e.GetOrtErrorCode(), (std::string("onnx_udc: ") + e.what()).c_str());
  } catch (const std::exception& e) {
    return api->CreateStatus(ORT_FAIL, (std::string("onnx_udc: ") + e.what()).c_str());
  } catch (...) {
    return api->CreateStatus(ORT_FAIL, "onnx_udc: unknown C++ exception in RegisterCustomOps");
  }
}
