/* onnx_udc.h - C entry points of libonnx_udc.so (plain C, usable from ctypes).
 *
 * Decodes one onnx-udc blob (FORMAT.md, format version 1) into a caller buffer.
 * Every blob is treated as untrusted: all lengths are bounds-checked, the limits of
 * FORMAT.md are enforced before anything is allocated and the checksum is verified
 * before the payload is decoded. No C++ exception crosses these functions.
 *
 * Every function returning int returns a udc_status value. `err`/`err_len` are optional
 * (err may be NULL): on failure err receives a NUL-terminated one-line message naming
 * the failing field and its values, truncated to err_len bytes; on success err[0] = 0.
 */
#ifndef ONNX_UDC_H_
#define ONNX_UDC_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define UDC_API __declspec(dllexport)
#else
#define UDC_API __attribute__((visibility("default")))
#endif

/* Status codes. The numbers are part of the API: the Python side maps them to typed
 * exceptions. */
enum udc_status {
  UDC_OK = 0,
  UDC_TRUNCATED = 1,            /* shorter than 40 bytes or than declared, or trailing bytes */
  UDC_BAD_MAGIC = 2,
  UDC_UNSUPPORTED_VERSION = 3,
  UDC_UNKNOWN_QUANTIZER = 4,
  UDC_UNKNOWN_CODER = 5,
  UDC_BAD_HEADER = 6,           /* flags, ndim, dtype / width / step / seed / params */
  UDC_LIMIT_EXCEEDED = 7,
  UDC_CHECKSUM_MISMATCH = 8,
  UDC_CORRUPT_PAYLOAD = 9,      /* coder did not yield exactly numel*width bytes from all L */
  UDC_BUFFER_SIZE = 10,         /* out_len != numel * element size */
  UDC_INVALID_ARGUMENT = 11,    /* null pointer */
  UDC_OUT_OF_MEMORY = 12,
  UDC_INTERNAL = 13,
  UDC_UNAVAILABLE = 14,         /* CUDA: not in this build, no driver, or no such device */
  UDC_DEVICE_ERROR = 15,        /* CUDA: a CUDA call failed (message names it) */
  UDC_BAD_MODEL = 16,           /* fast loader: not an ONNX ModelProto, or a malformed decode node */
  UDC_IO_ERROR = 17,            /* fast loader: a model or external-data file cannot be read */
  UDC_RUNTIME_ERROR = 18        /* fast loader: onnxruntime refused (its message follows) */
};

#define UDC_MAX_NDIM 8

typedef struct udc_blob_info {
  uint32_t version;
  uint32_t quantizer;
  uint32_t coder;
  uint32_t dtype;          /* ONNX TensorProto.DataType: 1 FLOAT, 2 UINT8, 3 INT8, 6 INT32, 10 FLOAT16 */
  uint32_t ndim;
  uint32_t symbol_width;
  uint64_t shape[8];       /* shape[0..ndim-1]; the rest is 0 */
  uint64_t numel;
  uint64_t nbytes;         /* numel * element size: the out_len udc_decode expects */
  float step;
  uint64_t seed;
  uint64_t payload_len;
} udc_blob_info;

/* Validates the header, all limits and the checksum; does not decode the payload. */
UDC_API int udc_inspect(const uint8_t* blob, size_t blob_len, udc_blob_info* info, char* err,
                        size_t err_len);

/* Full validation, then decodes into out; out_len must equal udc_blob_info.nbytes.
 * out may be NULL only when out_len is 0. */
UDC_API int udc_decode(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, char* err,
                       size_t err_len);

/* ---- decode options (versioned) ---------------------------------------------------------
 * What a caller may choose about one decode; no option changes the decoded bytes. The
 * struct is versioned by its size: initialise it with udc_decode_options_init(&o, sizeof o)
 * (or UDC_DECODE_OPTIONS_INIT), then set fields. A library reads the fields that lie inside
 * struct_size and uses the defaults for the others (an older caller), and accepts a larger
 * struct_size (a newer caller) only when the bytes it does not know are all 0 (their
 * defaults); otherwise UDC_INVALID_ARGUMENT. struct_size must be in [4, 4096].
 *
 *   threads           0 (default): hardware threads, at most 8; 1: the calling thread
 *                     only; N: at most N threads (clamped to 256). Tensors below 2^20
 *                     elements always decode on the calling thread.
 *   max_output_bytes  0 (default): no cap. Else a blob whose decoded size (numel * element
 *                     size, udc_blob_info.nbytes) exceeds it fails with UDC_LIMIT_EXCEEDED
 *                     after the blob's own checks and before anything is allocated for it
 *                     (and before out_len is compared with the size: UDC_BUFFER_SIZE). */
typedef struct udc_decode_options {
  uint32_t struct_size;       /* sizeof(udc_decode_options) as the caller compiled it */
  uint32_t threads;
  uint64_t max_output_bytes;
} udc_decode_options;

#define UDC_DECODE_OPTIONS_INIT {(uint32_t)sizeof(udc_decode_options), 0u, 0u}

/* Sets options[0, struct_size) to the defaults (all 0) and options->struct_size to
 * struct_size (pass sizeof(udc_decode_options)). UDC_INVALID_ARGUMENT for a NULL options or
 * a struct_size outside [4, 4096]. */
UDC_API int udc_decode_options_init(udc_decode_options* options, size_t struct_size);

/* udc_decode with options (NULL: the defaults, as udc_decode). */
UDC_API int udc_decode_ex(const uint8_t* blob, size_t blob_len, void* out, size_t out_len,
                          const udc_decode_options* options, char* err, size_t err_len);

/* Decodes like udc_decode through the element-parallel reconstruction that the CUDA
 * decoder runs (one work item per element, lattice vector or pq element; FORMAT.md section
 * 4), on the calling thread: the same bytes as udc_decode. For tests of that path on
 * machines without a GPU. */
UDC_API int udc_decode_units(const uint8_t* blob, size_t blob_len, void* out, size_t out_len, char* err,
                             size_t err_len);

/* udc_decode_units with options (NULL: the defaults). threads is not used (the calling
 * thread runs every work item); max_output_bytes is. */
UDC_API int udc_decode_units_ex(const uint8_t* blob, size_t blob_len, void* out, size_t out_len,
                                const udc_decode_options* options, char* err, size_t err_len);

/* ---- CUDA (libraries built where a CUDA toolkit was found) -------------------------------
 * udc_cuda_device_count: UDC_OK and *count = the CUDA devices visible; UDC_UNAVAILABLE (and
 * *count = 0) when the library was built without CUDA or no usable driver is present.
 *
 * udc_decode_cuda: udc_decode's checks and entropy decoding on the CPU, the reconstruction
 * on CUDA device `device`, the tensor copied back into the host buffer out (out_len as for
 * udc_decode). The same bytes as udc_decode. timing (may be NULL) receives the seconds of
 * each stage, each stage synchronised. */
typedef struct udc_cuda_timing {
  double entropy_s;    /* header checks, checksum and entropy decoding on the CPU */
  double upload_s;     /* symbols and params to the device */
  double kernel_s;     /* the reconstruction kernel */
  double download_s;   /* the tensor back to the host */
} udc_cuda_timing;

UDC_API int udc_cuda_device_count(int* count, char* err, size_t err_len);
UDC_API int udc_decode_cuda(const uint8_t* blob, size_t blob_len, int device, void* out, size_t out_len,
                            udc_cuda_timing* timing, char* err, size_t err_len);

/* udc_decode_cuda with options (NULL: the defaults): max_output_bytes is checked before any
 * device memory is allocated; threads is not used (entropy decoding is sequential). */
UDC_API int udc_decode_cuda_ex(const uint8_t* blob, size_t blob_len, int device, void* out, size_t out_len,
                               const udc_decode_options* options, udc_cuda_timing* timing, char* err,
                               size_t err_len);

/* ---- coder 2, range (FORMAT.md section 5.2), on unsigned symbols ------------------------
 * For encoders (the Python package) and tests: the blob decoder above uses it by itself.
 * Symbols are uint32 values below 2^(8*symbol_width); symbol_width is 1, 2 or 4; period
 * (>= 1, clamped to 255) is the vector length used as context.
 *
 * udc_range_encode writes the payload into out[0, out_cap) and its length into *out_len.
 * When out_cap is too small it returns UDC_BUFFER_SIZE with the needed length in *out_len
 * (call again with a buffer that large). UDC_INVALID_ARGUMENT for a symbol that does not
 * fit the width, a bad width or period 0. */
UDC_API int udc_range_encode(const uint32_t* symbols, uint64_t numel, uint32_t symbol_width, uint32_t period,
                             uint8_t* out, size_t out_cap, size_t* out_len, char* err, size_t err_len);

/* udc_range_encode with a variant of the extended header (FORMAT.md 5.2). variant 1: period
 * up to 2^20 (not clamped; e.g. the row length of a weight matrix), the one-byte header
 * (udc_range_encode's bytes) when period <= 255. variant 2: one model set per vector
 * position, period <= 8. UDC_INVALID_ARGUMENT for another variant or a period out of range. */
UDC_API int udc_range_encode_variant(const uint32_t* symbols, uint64_t numel, uint32_t symbol_width, uint32_t period,
                                     uint32_t variant, uint8_t* out, size_t out_cap, size_t* out_len, char* err,
                                     size_t err_len);

/* Decodes a range payload into exactly numel symbols out[numel]. UDC_CORRUPT_PAYLOAD on any
 * inconsistency (see FORMAT.md 5.2: it never reads past payload_len). */
UDC_API int udc_range_decode(const uint8_t* payload, size_t payload_len, uint64_t numel, uint32_t symbol_width,
                             uint32_t* out, char* err, size_t err_len);

/* ---- coder 3, rans (FORMAT.md section 5.3), on unsigned symbols -------------------------
 * Static frequency tables per context, interleaved rANS lanes. lanes (1..32), prob_bits
 * (8..15), contexts (1..16) and shift (1..8) are the payload's parameters; 0 lets the encoder
 * choose each (the smallest payload it estimates). Buffer protocol as udc_range_encode:
 * UDC_BUFFER_SIZE with the needed length in *out_len when out_cap is too small.
 * UDC_INVALID_ARGUMENT for a symbol that does not fit the width, a bad width or a parameter
 * out of range. */
UDC_API int udc_rans_encode(const uint32_t* symbols, uint64_t numel, uint32_t symbol_width, uint32_t lanes,
                            uint32_t prob_bits, uint32_t contexts, uint32_t shift, uint8_t* out, size_t out_cap,
                            size_t* out_len, char* err, size_t err_len);

/* Decodes a rans payload into exactly numel symbols out[numel]. UDC_CORRUPT_PAYLOAD on any
 * inconsistency (FORMAT.md 5.3: it never reads past payload_len). */
UDC_API int udc_rans_decode(const uint8_t* payload, size_t payload_len, uint64_t numel, uint32_t symbol_width,
                            uint32_t* out, char* err, size_t err_len);

/* ---- the fast loader: a compressed model prepared for onnxruntime's own loader ----------
 * udc_fast_model_create decodes every blob of the main graph's decode nodes once (in
 * parallel: options->threads for all blobs together) and rewrites the model: each decode
 * node removed, its blob initializer replaced in place by a placeholder initializer (the
 * node's output name, dtype and dims, data_location EXTERNAL, location "onnx_udc.decoded").
 * Give onnxruntime the rewritten model (udc_fast_model_bytes) and the decoded tensors
 * (udc_fast_model_tensor) as external initializers (C: OrtApi::AddExternalInitializers;
 * C#: SessionOptions.AddExternalInitializers; Java: SessionOptions.addExternalInitializers)
 * and it runs the original model: no per-run cost. udc_session_create (onnx_udc_ort.h)
 * does all of it in one call. The same rewrite and bytes as the Python fast loader.
 *
 * base_dir: the model file's folder, for blobs stored as external data (relative paths
 * inside it only); NULL or "" for a model in memory. Errors: UDC_BAD_MODEL (not a
 * ModelProto, malformed decode node), UDC_IO_ERROR (external data), or a blob's own status
 * (the message names the tensor). On success *out owns everything below; release it with
 * udc_fast_model_release after the session that uses its tensors is released. */
typedef struct udc_fast_model udc_fast_model;

typedef struct udc_fast_tensor {
  const char* name;        /* NUL-terminated */
  uint32_t dtype;          /* ONNX TensorProto.DataType */
  uint32_t ndim;
  const int64_t* shape;    /* shape[0..ndim-1] */
  const void* data;        /* 64-byte aligned, nbytes bytes, owned by the udc_fast_model */
  uint64_t nbytes;
} udc_fast_tensor;

UDC_API int udc_fast_model_create(const uint8_t* model, size_t model_len, const char* base_dir,
                                  const udc_decode_options* options, udc_fast_model** out, char* err,
                                  size_t err_len);
/* The rewritten ModelProto (valid while the udc_fast_model lives). */
UDC_API const uint8_t* udc_fast_model_bytes(const udc_fast_model* model, size_t* len);
UDC_API size_t udc_fast_model_tensor_count(const udc_fast_model* model);
/* UDC_INVALID_ARGUMENT for a NULL argument or index >= udc_fast_model_tensor_count. */
UDC_API int udc_fast_model_tensor(const udc_fast_model* model, size_t index, udc_fast_tensor* tensor);
/* 1 when ai.onnx_udc nodes remain (inside subgraphs): register the custom ops as well. */
UDC_API int udc_fast_model_needs_custom_ops(const udc_fast_model* model);
UDC_API void udc_fast_model_release(udc_fast_model* model);

/* "OK", "TRUNCATED", ...; "UNKNOWN_STATUS" for other values. Never NULL. */
UDC_API const char* udc_status_name(int status);

/* Library version, e.g. "0.1.0 (format 1)". */
UDC_API const char* udc_version(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* ONNX_UDC_H_ */
