// capi_fast.cc - the fast-loader entry points of onnx_udc.h (udc_fast_model_*): a shell
// on fast/fast_model.h that turns every C++ exception into a status code.
#include <memory>
#include <string>
#include <vector>

#include "capi_guard.h"
#include "fast/fast_model.h"
#include "onnx_udc.h"

struct udc_fast_model {
  udc::fast::FastModel model;
};

using udc::capi::Guard;
using udc::capi::ReadOptions;

extern "C" {

int udc_fast_model_create(const uint8_t* model, size_t model_len, const char* base_dir,
                          const udc_decode_options* options, udc_fast_model** out, char* err, size_t err_len) {
  return Guard(err, err_len, [&]() -> udc::Status {
    if (out == nullptr) return udc::Status(udc::Code::kInvalidArgument, "out is NULL");
    *out = nullptr;
    udc::fast::FastOptions fast;
    UDC_RETURN_IF_ERROR(ReadOptions(options, &fast.decode));
    if (base_dir != nullptr) fast.base_dir = base_dir;
    auto made = std::make_unique<udc_fast_model>();
    UDC_RETURN_IF_ERROR(udc::fast::PrepareFast(model, model_len, fast, &made->model));
    *out = made.release();
    return udc::Status::Ok();
  });
}

const uint8_t* udc_fast_model_bytes(const udc_fast_model* model, size_t* len) {
  if (model == nullptr) {
    if (len != nullptr) *len = 0;
    return nullptr;
  }
  if (len != nullptr) *len = model->model.model.size();
  return reinterpret_cast<const uint8_t*>(model->model.model.data());
}

size_t udc_fast_model_tensor_count(const udc_fast_model* model) {
  return model == nullptr ? 0 : model->model.tensors.size();
}

int udc_fast_model_tensor(const udc_fast_model* model, size_t index, udc_fast_tensor* tensor) {
  if (model == nullptr || tensor == nullptr || index >= model->model.tensors.size()) return UDC_INVALID_ARGUMENT;
  const udc::fast::DenseTensor& t = model->model.tensors[index];
  tensor->name = t.name.c_str();
  tensor->dtype = t.dtype;
  tensor->ndim = static_cast<uint32_t>(t.shape.size());
  tensor->shape = t.shape.data();
  tensor->data = t.data.get();
  tensor->nbytes = t.nbytes;
  return UDC_OK;
}

int udc_fast_model_needs_custom_ops(const udc_fast_model* model) {
  return model != nullptr && model->model.needs_custom_ops ? 1 : 0;
}

void udc_fast_model_release(udc_fast_model* model) { delete model; }

}  // extern "C"
