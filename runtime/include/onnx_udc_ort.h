/* onnx_udc_ort.h - the fast loader as one call: an onnxruntime session for a compressed
 * model that runs exactly as fast as the original (C; C++: onnx_udc.hpp).
 *
 * udc_session_create reads the model, decodes every blob once (udc_fast_model_create),
 * and creates the session from the rewritten model with the decoded tensors as external
 * initializers, so onnxruntime constant-folds and pre-packs them like the original
 * weights. Your session options are not modified (the library works on a clone of them);
 * the custom ops are registered on that clone only when decode nodes remain in subgraphs.
 *
 *   const OrtApiBase* base = OrtGetApiBase();
 *   udc_session* s = NULL;  char err[512];
 *   if (udc_session_create(base, env, "model.udc.onnx", opts, NULL, &s, err, sizeof err))
 *     { fprintf(stderr, "%s\n", err); ... }
 *   OrtSession* session = udc_session_ort(s);      // run it with the OrtApi as usual
 *   ...
 *   udc_session_release(s);                        // the session, then the decoded weights
 *
 * The library does not link libonnxruntime: it calls the OrtApi of `api_base` (the
 * caller's onnxruntime, which must offer the C API version the library was built with,
 * onnxruntime 1.21 or newer). Paths are UTF-8 (POSIX). Status codes as onnx_udc.h;
 * UDC_RUNTIME_ERROR carries onnxruntime's message. */
#ifndef ONNX_UDC_ORT_H_
#define ONNX_UDC_ORT_H_

#include <onnxruntime_c_api.h>

#include "onnx_udc.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct udc_session udc_session;

/* options may be NULL (onnxruntime's defaults). decode_options (may be NULL) apply to the
 * blobs decoded here and, through the clone's config entries, to decode nodes left in
 * subgraphs; NULL: the onnx_udc.decode_threads / onnx_udc.max_output_bytes config entries
 * of `options`, else the environment variables (runtime/README.md, "Decode options").
 * Do not register libonnx_udc yourself on `options`: it is registered when needed, and
 * onnxruntime refuses a second registration of the domain. The model's folder is where
 * external data of the model (blobs or uncompressed weights) is read. */
UDC_API int udc_session_create(const OrtApiBase* api_base, OrtEnv* env, const char* model_path,
                               const OrtSessionOptions* options, const udc_decode_options* decode_options,
                               udc_session** out, char* err, size_t err_len);

/* The same for a model in memory; base_dir (may be NULL) is the folder of its external
 * data, if any. The bytes may be freed once this returns. */
UDC_API int udc_session_create_from_array(const OrtApiBase* api_base, OrtEnv* env, const void* model,
                                          size_t model_len, const char* base_dir, const OrtSessionOptions* options,
                                          const udc_decode_options* decode_options, udc_session** out, char* err,
                                          size_t err_len);

/* The onnxruntime session (owned by the udc_session: never release it yourself). */
UDC_API OrtSession* udc_session_ort(const udc_session* session);

/* Seconds spent decoding blobs (and rewriting the model) inside udc_session_create. */
UDC_API double udc_session_decode_seconds(const udc_session* session);

/* Releases the session, then the decoded tensors. NULL is a no-op. */
UDC_API void udc_session_release(udc_session* session);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ONNX_UDC_ORT_H_ */
