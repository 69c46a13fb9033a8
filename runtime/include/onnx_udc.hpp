// onnx_udc.hpp - header-only C++ wrapper of onnx_udc.h and onnx_udc_ort.h, in the style
// of onnxruntime's C++ API (RAII owners, errors as exceptions, Ort:: types in and out).
//
//   Ort::Env env;
//   Ort::SessionOptions options;                       // yours; it is not modified
//   onnx_udc::Session session(env, "model.udc.onnx", options);   // the fast path
//   auto outputs = session.Run(Ort::RunOptions{nullptr}, names_in, values_in, n_in,
//                              names_out, n_out);      // as Ort::Session::Run
//
// The portable path (the file run as it is, the custom ops decoding at session creation):
//   onnx_udc::RegisterCustomOps(options);  Ort::Session plain(env, path, options);
//
// Link libonnx_udc.so and libonnxruntime (the program's onnxruntime is the one used).
#ifndef ONNX_UDC_HPP_
#define ONNX_UDC_HPP_

#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <dlfcn.h>
#endif

#include "onnx_udc.h"
#include "onnx_udc_ort.h"

namespace onnx_udc {

// A failed call: status() is the udc_status, what() the one-line message.
class Error : public std::runtime_error {
 public:
  Error(int status, const std::string& message)
      : std::runtime_error(std::string(udc_status_name(status)) + ": " + message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

namespace detail {
inline void ThrowOnError(int status, const char* err) {
  if (status != UDC_OK) throw Error(status, err);
}
}  // namespace detail

// udc_decode_options; no option changes the decoded bytes.
struct DecodeOptions {
  uint32_t threads = 0;           // 0: hardware threads, at most 8
  uint64_t max_output_bytes = 0;  // 0: no cap per blob

  udc_decode_options ToC() const {
    udc_decode_options o = UDC_DECODE_OPTIONS_INIT;
    o.threads = threads;
    o.max_output_bytes = max_output_bytes;
    return o;
  }
};

// The path of the loaded libonnx_udc.so (for RegisterCustomOpsLibrary); "" where unknown.
inline std::string LibraryPath() {
#if defined(__unix__) || defined(__APPLE__)
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&udc_version), &info) != 0 && info.dli_fname != nullptr) return info.dli_fname;
#endif
  return std::string();
}

// The portable path: registers the custom-op library with `options`.
inline void RegisterCustomOps(Ort::SessionOptions& options, const std::string& library = LibraryPath()) {
  if (library.empty()) throw Error(UDC_UNAVAILABLE, "cannot locate libonnx_udc; pass its path");
  options.RegisterCustomOpsLibrary(library.c_str());
}

// A compressed model prepared for onnxruntime's own loader (udc_fast_model_*): the
// rewritten model bytes and the decoded tensors, for callers that build the session
// themselves (AddExternalInitializers). Session below does it for you.
class FastModel {
 public:
  FastModel(const void* model, size_t model_len, const std::string& base_dir = std::string(),
            const DecodeOptions& decode = DecodeOptions()) {
    char err[1024];
    udc_fast_model* p = nullptr;
    const udc_decode_options o = decode.ToC();
    detail::ThrowOnError(udc_fast_model_create(static_cast<const uint8_t*>(model), model_len,
                                               base_dir.empty() ? nullptr : base_dir.c_str(), &o, &p, err, sizeof err),
                         err);
    p_.reset(p);
  }
  std::pair<const uint8_t*, size_t> ModelBytes() const {
    size_t len = 0;
    const uint8_t* bytes = udc_fast_model_bytes(p_.get(), &len);
    return {bytes, len};
  }
  size_t TensorCount() const { return udc_fast_model_tensor_count(p_.get()); }
  udc_fast_tensor Tensor(size_t index) const {
    udc_fast_tensor t{};
    detail::ThrowOnError(udc_fast_model_tensor(p_.get(), index, &t), "tensor index out of range");
    return t;
  }
  bool NeedsCustomOps() const { return udc_fast_model_needs_custom_ops(p_.get()) != 0; }
  const udc_fast_model* get() const { return p_.get(); }

 private:
  struct Deleter {
    void operator()(udc_fast_model* p) const { udc_fast_model_release(p); }
  };
  std::unique_ptr<udc_fast_model, Deleter> p_;
};

// The fast path: an onnxruntime session over the decoded weights (udc_session_*).
class Session {
 public:
  Session(Ort::Env& env, const std::string& model_path, const Ort::SessionOptions& options,
          const DecodeOptions& decode = DecodeOptions()) {
    Create(env, model_path, static_cast<const OrtSessionOptions*>(options), decode);
  }
  Session(Ort::Env& env, const std::string& model_path) { Create(env, model_path, nullptr, DecodeOptions()); }
  Session(Ort::Env& env, const void* model, size_t model_len, const std::string& base_dir,
          const Ort::SessionOptions& options, const DecodeOptions& decode = DecodeOptions()) {
    char err[1024];
    udc_session* p = nullptr;
    const udc_decode_options o = decode.ToC();
    detail::ThrowOnError(udc_session_create_from_array(OrtGetApiBase(), env, model, model_len,
                                                       base_dir.empty() ? nullptr : base_dir.c_str(),
                                                       static_cast<const OrtSessionOptions*>(options), &o, &p, err,
                                                       sizeof err),
                         err);
    p_.reset(p);
  }

  // The onnxruntime session; valid while this object lives.
  Ort::UnownedSession GetSession() const { return Ort::UnownedSession{udc_session_ort(p_.get())}; }
  operator OrtSession*() const { return udc_session_ort(p_.get()); }

  std::vector<Ort::Value> Run(const Ort::RunOptions& run_options, const char* const* input_names,
                              const Ort::Value* input_values, size_t input_count, const char* const* output_names,
                              size_t output_count) {
    return GetSession().Run(run_options, input_names, input_values, input_count, output_names, output_count);
  }

  // Seconds spent decoding the blobs during construction.
  double DecodeSeconds() const { return udc_session_decode_seconds(p_.get()); }

 private:
  void Create(Ort::Env& env, const std::string& path, const OrtSessionOptions* options, const DecodeOptions& decode) {
    char err[1024];
    udc_session* p = nullptr;
    const udc_decode_options o = decode.ToC();
    detail::ThrowOnError(udc_session_create(OrtGetApiBase(), env, path.c_str(), options, &o, &p, err, sizeof err), err);
    p_.reset(p);
  }
  struct Deleter {
    void operator()(udc_session* p) const { udc_session_release(p); }
  };
  std::unique_ptr<udc_session, Deleter> p_;
};

}  // namespace onnx_udc

#endif  // ONNX_UDC_HPP_
