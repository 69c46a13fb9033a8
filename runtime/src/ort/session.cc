// session.cc - udc_session_create (onnx_udc_ort.h): the fast loader as one call, on the
// plain onnxruntime C API of the caller's onnxruntime.
//
//   model bytes --PrepareFast--> rewritten model + dense tensors (fast/fast_model.h)
//     --CreateTensorWithDataAsOrtValue (no copy)--> OrtValues
//     --AddExternalInitializers on a clone of the caller's options--> CreateSessionFromArray
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "capi_guard.h"
#include "fast/fast_model.h"
#include "onnx_udc_ort.h"
#include "ort/options.h"

extern "C" OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base);

struct udc_session {
  const OrtApi* api = nullptr;
  OrtSession* session = nullptr;
  std::vector<OrtValue*> values;
  udc::fast::FastModel model;
  double decode_seconds = 0;

  ~udc_session() {
    if (session != nullptr) api->ReleaseSession(session);  // before the tensors it reads
    for (OrtValue* v : values) api->ReleaseValue(v);
  }
};

namespace {

using udc::Code;
using udc::Status;

// An OrtStatus -> Status (kRuntimeError with onnxruntime's message); releases it.
Status Check(const OrtApi* api, OrtStatus* status, const char* what) {
  if (status == nullptr) return Status::Ok();
  std::string message = std::string(what) + ": " + api->GetErrorMessage(status);
  api->ReleaseStatus(status);
  for (char& c : message) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return Status(Code::kRuntimeError, message);
}

struct OptionsGuard {
  const OrtApi* api;
  OrtSessionOptions* p = nullptr;
  ~OptionsGuard() {
    if (p != nullptr) api->ReleaseSessionOptions(p);
  }
};

struct MemoryInfoGuard {
  const OrtApi* api;
  OrtMemoryInfo* p = nullptr;
  ~MemoryInfoGuard() {
    if (p != nullptr) api->ReleaseMemoryInfo(p);
  }
};

Status Create(const OrtApiBase* api_base, OrtEnv* env, const uint8_t* model, size_t model_len,
              const std::string& base_dir, const OrtSessionOptions* options, const udc_decode_options* decode_options,
              udc_session** out) {
  if (out == nullptr) return Status(Code::kInvalidArgument, "out is NULL");
  *out = nullptr;
  if (api_base == nullptr || env == nullptr) return Status(Code::kInvalidArgument, "api_base or env is NULL");
  const OrtApi* api = api_base->GetApi(ORT_API_VERSION);
  if (api == nullptr) {
    return Status(Code::kRuntimeError, std::string("this onnxruntime (") + api_base->GetVersionString() +
                                           ") does not offer C API version " + std::to_string(ORT_API_VERSION) +
                                           ", which the library was built with");
  }
  static const bool api_ready = (Ort::InitApi(api), true);  // for ReadOpOptions (C++ API)
  (void)api_ready;
  auto s = std::make_unique<udc_session>();
  s->api = api;

  OptionsGuard opts{api};
  UDC_RETURN_IF_ERROR(Check(api, options != nullptr ? api->CloneSessionOptions(options, &opts.p)
                                                    : api->CreateSessionOptions(&opts.p),
                            "session options"));
  // One set of decode options for the blobs decoded here and for the custom ops that
  // decode nodes left in subgraphs run: the caller's udc_decode_options, written into the
  // clone's config entries for the ops; without them, what the ops would read (the
  // caller's config entries, else the environment: ort/options.h).
  udc::fast::FastOptions fast;
  if (decode_options != nullptr) {
    UDC_RETURN_IF_ERROR(udc::capi::ReadOptions(decode_options, &fast.decode));
    const std::string threads = std::to_string(fast.decode.max_threads);
    const std::string cap = std::to_string(fast.decode.max_output_bytes);
    UDC_RETURN_IF_ERROR(Check(api, api->AddSessionConfigEntry(opts.p, udc::ort::kThreadsKey, threads.c_str()),
                              "session options"));
    UDC_RETURN_IF_ERROR(Check(api, api->AddSessionConfigEntry(opts.p, udc::ort::kMaxOutputBytesKey, cap.c_str()),
                              "session options"));
  } else {
    std::string error;
    if (!udc::ort::ReadOpOptions(opts.p, &fast.decode, &error)) return Status(Code::kInvalidArgument, error);
  }
  fast.base_dir = base_dir;
  const auto t0 = std::chrono::steady_clock::now();
  UDC_RETURN_IF_ERROR(udc::fast::PrepareFast(model, model_len, fast, &s->model));
  s->decode_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  MemoryInfoGuard memory{api};
  UDC_RETURN_IF_ERROR(
      Check(api, api->CreateCpuMemoryInfo(OrtDeviceAllocator, OrtMemTypeDefault, &memory.p), "memory info"));
  std::vector<const char*> names;
  for (const udc::fast::DenseTensor& t : s->model.tensors) {
    OrtValue* value = nullptr;
    UDC_RETURN_IF_ERROR(Check(api,
                              api->CreateTensorWithDataAsOrtValue(
                                  memory.p, t.data.get(), static_cast<size_t>(t.nbytes), t.shape.data(),
                                  t.shape.size(), static_cast<ONNXTensorElementDataType>(t.dtype), &value),
                              t.name.c_str()));
    s->values.push_back(value);
    names.push_back(t.name.c_str());
  }
  if (!names.empty()) {
    UDC_RETURN_IF_ERROR(Check(api,
                              api->AddExternalInitializers(opts.p, names.data(),
                                                           const_cast<const OrtValue* const*>(s->values.data()),
                                                           names.size()),
                              "AddExternalInitializers"));
  }
  if (s->model.needs_custom_ops) {
    UDC_RETURN_IF_ERROR(Check(api, RegisterCustomOps(opts.p, api_base), "registering the custom ops"));
  }
  if (!base_dir.empty()) {
    UDC_RETURN_IF_ERROR(Check(api,
                              api->AddSessionConfigEntry(opts.p, "session.model_external_initializers_file_folder_path",
                                                         base_dir.c_str()),
                              "session options"));
  }
  const std::string& bytes = s->model.model;
  UDC_RETURN_IF_ERROR(Check(api, api->CreateSessionFromArray(env, bytes.data(), bytes.size(), opts.p, &s->session),
                            "onnxruntime cannot create a session"));
  std::string().swap(s->model.model);  // onnxruntime has parsed it: do not keep a second copy
  *out = s.release();
  return Status::Ok();
}

Status ReadFile(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kIoError, std::string("cannot open model file ") + path + ": " + std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return Status(Code::kIoError, std::string("cannot read model file ") + path);
  *out = std::move(buffer).str();
  return Status::Ok();
}

std::string Folder(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

extern "C" {

int udc_session_create(const OrtApiBase* api_base, OrtEnv* env, const char* model_path,
                       const OrtSessionOptions* options, const udc_decode_options* decode_options, udc_session** out,
                       char* err, size_t err_len) {
  return udc::capi::Guard(err, err_len, [&]() -> Status {
    if (out != nullptr) *out = nullptr;
    if (model_path == nullptr) return Status(Code::kInvalidArgument, "model_path is NULL");
    std::string bytes;
    UDC_RETURN_IF_ERROR(ReadFile(model_path, &bytes));
    return Create(api_base, env, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), Folder(model_path),
                  options, decode_options, out);
  });
}

int udc_session_create_from_array(const OrtApiBase* api_base, OrtEnv* env, const void* model, size_t model_len,
                                  const char* base_dir, const OrtSessionOptions* options,
                                  const udc_decode_options* decode_options, udc_session** out, char* err,
                                  size_t err_len) {
  return udc::capi::Guard(err, err_len, [&]() -> Status {
    if (out != nullptr) *out = nullptr;
    if (model == nullptr && model_len != 0) return Status(Code::kInvalidArgument, "model is NULL");
    return Create(api_base, env, static_cast<const uint8_t*>(model), model_len, base_dir ? base_dir : "", options,
                  decode_options, out);
  });
}

OrtSession* udc_session_ort(const udc_session* session) { return session ? session->session : nullptr; }

double udc_session_decode_seconds(const udc_session* session) { return session ? session->decode_seconds : 0.0; }

void udc_session_release(udc_session* session) { delete session; }

}  // extern "C"
