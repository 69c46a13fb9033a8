"""The native library libonnx_udc.so: where it is, and its C entry points through ctypes.

    library_path()      the built custom-op library (to register with onnxruntime)
    NativeDecoder       udc_inspect / udc_decode_ex (threads, max_output_bytes) / udc_decode_units /
                        udc_decode_cuda
    NativeRange         udc_range_encode(_variant) / udc_range_decode (coder 2, FORMAT.md 5.2)
    NativeRans          udc_rans_encode(_elements) / udc_rans_decode (coder 3, FORMAT.md 5.3)
    NativeScalar        udc_scalar_codes / udc_scalar_error / udc_symbol_histogram (quantizer 1's
                        float32 encoder kernels, FORMAT.md 4.1: the numpy reference's values)

This package knows nothing of ONNX graphs or onnxruntime sessions; the loaders that use
it live in ``onnx_udc.load``.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import numpy as np

from ..errors import (
    ChecksumError,
    DeviceError,
    FormatError,
    ModelError,
    LimitError,
    RuntimeLibraryError,
    UnsupportedVersionError,
)
from ..format import DType

LIBRARY_ENV = "ONNX_UDC_LIBRARY"
_LIB_NAME = "libonnx_udc.so"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # onnx_udc/

STATUS_NAMES = (
    "OK", "TRUNCATED", "BAD_MAGIC", "UNSUPPORTED_VERSION", "UNKNOWN_QUANTIZER", "UNKNOWN_CODER",
    "BAD_HEADER", "LIMIT_EXCEEDED", "CHECKSUM_MISMATCH", "CORRUPT_PAYLOAD", "BUFFER_SIZE",
    "INVALID_ARGUMENT", "OUT_OF_MEMORY", "INTERNAL", "UNAVAILABLE", "DEVICE_ERROR", "BAD_MODEL",
    "IO_ERROR", "RUNTIME_ERROR",
)


def library_path() -> str:
    """Path of the built custom-op library ``libonnx_udc.so``.

    Looked up in $ONNX_UDC_LIBRARY, then ``onnx_udc/_lib/`` (where ``make runtime``
    puts it), then ``runtime/build/`` of a source checkout.
    """
    env = os.environ.get(LIBRARY_ENV)
    if env:
        if not Path(env).is_file():
            raise RuntimeLibraryError(f"${LIBRARY_ENV}={env} does not exist")
        return str(Path(env).resolve())
    for candidate in (_PACKAGE_DIR / "_lib" / _LIB_NAME, _PACKAGE_DIR.parent / "runtime" / "build" / _LIB_NAME):
        if candidate.is_file():
            return str(candidate)
    raise RuntimeLibraryError(
        f"{_LIB_NAME} not found: build it with `make runtime` (or set ${LIBRARY_ENV})"
    )


class _BlobInfo(ctypes.Structure):
    _fields_ = [
        ("version", ctypes.c_uint32), ("quantizer", ctypes.c_uint32), ("coder", ctypes.c_uint32),
        ("dtype", ctypes.c_uint32), ("ndim", ctypes.c_uint32), ("symbol_width", ctypes.c_uint32),
        ("shape", ctypes.c_uint64 * 8), ("numel", ctypes.c_uint64), ("nbytes", ctypes.c_uint64),
        ("step", ctypes.c_float), ("seed", ctypes.c_uint64), ("payload_len", ctypes.c_uint64),
    ]


def _raise_status(status: int, message: str) -> None:
    name = STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else f"STATUS_{status}"
    text = f"{message} [{name}]"
    if name == "UNSUPPORTED_VERSION":
        raise UnsupportedVersionError(text)
    if name == "CHECKSUM_MISMATCH":
        raise ChecksumError(text)
    if name == "LIMIT_EXCEEDED":
        raise LimitError(text)
    if name in ("UNAVAILABLE", "DEVICE_ERROR"):
        raise DeviceError(text, name)
    raise FormatError(text, name)


def _load_library(path: str | None) -> tuple[str, ctypes.CDLL]:
    """The native library at ``path`` (default: ``library_path()``), loaded."""
    path = path or library_path()
    try:
        return path, ctypes.CDLL(path)
    except OSError as exc:
        raise RuntimeLibraryError(f"cannot load {path}: {exc}") from None


class DecodeOptions(ctypes.Structure):
    """``udc_decode_options`` (onnx_udc.h), versioned by struct_size: build it with
    ``DecodeOptions.make`` (``udc_decode_options_init``)."""

    _fields_ = [("struct_size", ctypes.c_uint32), ("threads", ctypes.c_uint32), ("max_output_bytes", ctypes.c_uint64)]

    @classmethod
    def make(cls, threads: int = 0, max_output_bytes: int = 0) -> "DecodeOptions":
        if threads < 0 or max_output_bytes < 0:
            raise ValueError(f"threads ({threads}) and max_output_bytes ({max_output_bytes}) must be >= 0")
        return cls(ctypes.sizeof(cls), min(int(threads), 0xFFFFFFFF), int(max_output_bytes))


class _FastTensor(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("dtype", ctypes.c_uint32), ("ndim", ctypes.c_uint32),
        ("shape", ctypes.POINTER(ctypes.c_int64)), ("data", ctypes.c_void_p), ("nbytes", ctypes.c_uint64),
    ]


class NativeDecoder:
    """ctypes binding of the library's C entry points (``udc_inspect``, ``udc_decode_ex``, ...)."""

    def __init__(self, path: str | None = None):
        path, lib = _load_library(path)
        u8p = ctypes.POINTER(ctypes.c_uint8)
        lib.udc_inspect.argtypes = [u8p, ctypes.c_size_t, ctypes.POINTER(_BlobInfo), ctypes.c_char_p, ctypes.c_size_t]
        lib.udc_inspect.restype = ctypes.c_int
        lib.udc_decode.argtypes = [u8p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t]
        lib.udc_decode.restype = ctypes.c_int
        lib.udc_decode_units.argtypes = lib.udc_decode.argtypes
        lib.udc_decode_units.restype = ctypes.c_int
        self._decode_ex = getattr(lib, "udc_decode_ex", None)  # decode options (threads, max_output_bytes)
        if self._decode_ex is not None:
            self._decode_ex.argtypes = [u8p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                                        ctypes.POINTER(DecodeOptions), ctypes.c_char_p, ctypes.c_size_t]
            self._decode_ex.restype = ctypes.c_int
        lib.udc_cuda_device_count.argtypes = [ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_size_t]
        lib.udc_cuda_device_count.restype = ctypes.c_int
        lib.udc_decode_cuda.argtypes = [u8p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                        ctypes.POINTER(CudaTiming), ctypes.c_char_p, ctypes.c_size_t]
        lib.udc_decode_cuda.restype = ctypes.c_int
        lib.udc_version.restype = ctypes.c_char_p
        self._fast = getattr(lib, "udc_fast_model_create", None)  # the C fast loader
        if self._fast is not None:
            vp = ctypes.c_void_p
            self._fast.argtypes = [u8p, ctypes.c_size_t, ctypes.c_char_p, ctypes.POINTER(DecodeOptions),
                                   ctypes.POINTER(vp), ctypes.c_char_p, ctypes.c_size_t]
            self._fast.restype = ctypes.c_int
            lib.udc_fast_model_bytes.argtypes = [vp, ctypes.POINTER(ctypes.c_size_t)]
            lib.udc_fast_model_bytes.restype = ctypes.c_void_p
            lib.udc_fast_model_tensor_count.argtypes = [vp]
            lib.udc_fast_model_tensor_count.restype = ctypes.c_size_t
            lib.udc_fast_model_tensor.argtypes = [vp, ctypes.c_size_t, ctypes.POINTER(_FastTensor)]
            lib.udc_fast_model_tensor.restype = ctypes.c_int
            lib.udc_fast_model_needs_custom_ops.argtypes = [vp]
            lib.udc_fast_model_needs_custom_ops.restype = ctypes.c_int
            lib.udc_fast_model_release.argtypes = [vp]
            lib.udc_fast_model_release.restype = None
        self._lib = lib
        self.path = path
        self.version = lib.udc_version().decode()

    def _inspect(self, buf: np.ndarray) -> _BlobInfo:
        info = _BlobInfo()
        err = ctypes.create_string_buffer(256)
        status = self._lib.udc_inspect(buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), buf.size, ctypes.byref(info), err, 256)
        if status:
            _raise_status(status, err.value.decode(errors="replace"))
        return info

    def _output(self, buf: np.ndarray, max_output_bytes: int = 0) -> np.ndarray | None:
        """The output array of the blob; None when its size is above max_output_bytes (the
        library then reports LIMIT_EXCEEDED before anything is allocated)."""
        info = self._inspect(buf)
        try:
            dtype = DType(info.dtype)
        except ValueError:
            raise FormatError(f"unsupported element type code {info.dtype}") from None
        if max_output_bytes and info.nbytes > max_output_bytes:
            return None
        return np.empty(tuple(info.shape[: info.ndim]), dtype=dtype.numpy)

    def _decode_with(self, entry, blob, *extra, options: DecodeOptions | None = None) -> np.ndarray:
        buf = np.frombuffer(blob, dtype=np.uint8) if not isinstance(blob, np.ndarray) else blob
        out = self._output(buf, options.max_output_bytes if options is not None else 0)
        out_p, out_len = (out.ctypes.data, out.nbytes) if out is not None else (None, 0)
        err = ctypes.create_string_buffer(256)
        args = (buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), buf.size)
        if extra:  # udc_decode_cuda: device before the output, timing after it
            status = entry(*args, extra[0], out_p, out_len, extra[1], err, 256)
        elif options is not None:  # udc_decode_ex
            status = entry(*args, out_p, out_len, ctypes.byref(options), err, 256)
        else:
            status = entry(*args, out_p, out_len, err, 256)
        if status:
            _raise_status(status, err.value.decode(errors="replace"))
        return out

    def decode(self, blob: bytes | memoryview | np.ndarray, threads: int = 0, max_output_bytes: int = 0) -> np.ndarray:
        """blob -> tensor [*shape], decoded by the C++ core (``udc_decode_ex``).

        threads: 0 = the library's default (hardware threads, at most 8), 1 = this thread
        only, N = at most N threads; the bytes are the same for any value. max_output_bytes:
        0 = no cap, else a blob decoding to more bytes raises LimitError before anything is
        allocated for it."""
        if self._decode_ex is None:
            if threads or max_output_bytes:
                raise RuntimeLibraryError(f"{self.path} predates udc_decode_ex: rebuild it with `make runtime`")
            return self._decode_with(self._lib.udc_decode, blob)
        return self._decode_with(self._decode_ex, blob, options=DecodeOptions.make(threads, max_output_bytes))

    def prepare_fast(self, model: bytes, base_dir: str | None = None, threads: int = 0
                     ) -> tuple[bytes, dict[str, np.ndarray], bool]:
        """The C fast loader (``udc_fast_model_create``) on serialized model bytes:
        (rewritten model bytes, {decoded tensor name: array}, custom ops still needed). The
        same rewrite and bytes as ``onnx_udc.load.session.prepare_fast``; C, C++, C# and
        Java callers use it through the C API. Errors: BAD_MODEL as ModelError."""
        if self._fast is None:
            raise RuntimeLibraryError(f"{self.path} predates udc_fast_model_create: rebuild it with `make runtime`")
        buf = np.frombuffer(model, dtype=np.uint8)
        handle = ctypes.c_void_p()
        err = ctypes.create_string_buffer(1024)
        status = self._fast(buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), buf.size,
                            base_dir.encode() if base_dir else None, ctypes.byref(DecodeOptions.make(threads)),
                            ctypes.byref(handle), err, 1024)
        if status:
            message = err.value.decode(errors="replace")
            if STATUS_NAMES[status] in ("BAD_MODEL", "IO_ERROR"):
                raise ModelError(message)
            _raise_status(status, message)
        lib = self._lib
        try:
            size = ctypes.c_size_t(0)
            ptr = lib.udc_fast_model_bytes(handle, ctypes.byref(size))
            rewritten = ctypes.string_at(ptr, size.value)
            dense: dict[str, np.ndarray] = {}
            for i in range(lib.udc_fast_model_tensor_count(handle)):
                t = _FastTensor()
                if lib.udc_fast_model_tensor(handle, i, ctypes.byref(t)):
                    raise RuntimeLibraryError(f"udc_fast_model_tensor({i}) failed")
                shape = tuple(t.shape[d] for d in range(t.ndim))
                raw = ctypes.string_at(t.data, t.nbytes) if t.nbytes else b""
                dense[t.name.decode()] = np.frombuffer(raw, dtype=DType(t.dtype).numpy).reshape(shape)
            return rewritten, dense, bool(lib.udc_fast_model_needs_custom_ops(handle))
        finally:
            lib.udc_fast_model_release(handle)

    def decode_units(self, blob: bytes | memoryview | np.ndarray) -> np.ndarray:
        """blob -> tensor [*shape] through the element-parallel reconstruction the CUDA
        decoder runs, executed on the host (``udc_decode_units``): the same bytes as decode."""
        return self._decode_with(self._lib.udc_decode_units, blob)

    def cuda_device_count(self) -> int:
        """CUDA devices the library can use; 0 when it was built without CUDA or has no driver."""
        count = ctypes.c_int(0)
        err = ctypes.create_string_buffer(256)
        status = self._lib.udc_cuda_device_count(ctypes.byref(count), err, 256)
        if status and STATUS_NAMES[status] != "UNAVAILABLE":
            _raise_status(status, err.value.decode(errors="replace"))
        return count.value if status == 0 else 0

    def cuda_unavailable_reason(self) -> str | None:
        """Why no CUDA device can be used (None when one can): for skip messages."""
        count = ctypes.c_int(0)
        err = ctypes.create_string_buffer(256)
        status = self._lib.udc_cuda_device_count(ctypes.byref(count), err, 256)
        if status:
            return err.value.decode(errors="replace")
        return None if count.value > 0 else "no CUDA device is visible"

    def decode_cuda(self, blob: bytes | memoryview | np.ndarray, device: int = 0) -> tuple[np.ndarray, CudaTiming]:
        """blob -> (tensor [*shape], per-stage seconds): entropy decoding on the CPU, the
        reconstruction on CUDA ``device``, the tensor copied back. Raises DeviceError when
        no CUDA decoder or device is available."""
        timing = CudaTiming()
        out = self._decode_with(self._lib.udc_decode_cuda, blob, int(device), ctypes.byref(timing))
        return out, timing


class CudaTiming(ctypes.Structure):
    """``udc_cuda_timing``: seconds per stage of one ``udc_decode_cuda`` call."""

    _fields_ = [("entropy_s", ctypes.c_double), ("upload_s", ctypes.c_double),
                ("kernel_s", ctypes.c_double), ("download_s", ctypes.c_double)]


@functools.cache
def native_decoder() -> NativeDecoder:
    """The process's decoder of the native library (loaded once)."""
    return NativeDecoder()


# ---- the coders' entry points (range, rans): one buffer protocol, one decode call ------------

def _encoded(call, cap: int, name: str) -> bytes:
    """The payload of an encoder entry point ``call(out, out_cap, &out_len, err)`` (the
    buffer protocol of onnx_udc.h: UDC_BUFFER_SIZE with the needed length; retried once)."""
    for _ in range(2):
        out = np.empty(cap, dtype=np.uint8)
        out_len = ctypes.c_size_t(0)
        err = ctypes.create_string_buffer(256)
        status = call(out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), cap, ctypes.byref(out_len), err)
        if status == STATUS_NAMES.index("BUFFER_SIZE"):
            cap = out_len.value
            continue
        if status:
            _raise_status(status, err.value.decode(errors="replace"))
        return out[: out_len.value].tobytes()
    raise RuntimeError(f"the {name} encoder asked for a larger buffer twice")


def _decoded(fn, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
    """payload -> symbols uint32 [numel] through a decoder entry point (udc_range_decode,
    udc_rans_decode); FormatError(CORRUPT_PAYLOAD) on a bad payload."""
    buf = np.frombuffer(payload, dtype=np.uint8)
    out = np.empty(numel, dtype=np.uint32)  # [numel]
    err = ctypes.create_string_buffer(256)
    status = fn(buf.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), buf.size, numel, width,
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint32)), err, 256)
    if status:
        _raise_status(status, err.value.decode(errors="replace"))
    return out


# ---- coder 2, range: the C++ encoder and decoder (FORMAT.md 5.2) -------------------------

class NativeRange:
    """ctypes binding of ``udc_range_encode`` / ``udc_range_decode`` (symbols <-> payload)."""

    def __init__(self, path: str | None = None):
        path, lib = _load_library(path)
        if not hasattr(lib, "udc_range_encode"):
            raise RuntimeLibraryError(f"{path} predates the range coder: rebuild it with `make runtime`")
        u8p, u32p = ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_uint32)
        lib.udc_range_encode.argtypes = [u32p, ctypes.c_uint64, ctypes.c_uint32, ctypes.c_uint32, u8p, ctypes.c_size_t,
                                         ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p, ctypes.c_size_t]
        lib.udc_range_encode.restype = ctypes.c_int
        self._variant = getattr(lib, "udc_range_encode_variant", None)  # the extended header (FORMAT.md 5.2)
        if self._variant is not None:
            args = lib.udc_range_encode.argtypes
            self._variant.argtypes = args[:4] + [ctypes.c_uint32] + args[4:]
            self._variant.restype = ctypes.c_int
        lib.udc_range_decode.argtypes = [u8p, ctypes.c_size_t, ctypes.c_uint64, ctypes.c_uint32, u32p,
                                         ctypes.c_char_p, ctypes.c_size_t]
        lib.udc_range_decode.restype = ctypes.c_int
        self._lib = lib
        self.path = path

    def encode(self, symbols: np.ndarray, width: int, period: int, variant: int = 1) -> bytes:
        """symbols uint [numel] -> payload. variant 1: a period above 255 (up to 2^20) is kept
        through the extended header (a library without ``udc_range_encode_variant`` clamps it
        to 255); variant 2: a model set per vector position (period <= 8)."""
        sym = np.ascontiguousarray(symbols, dtype=np.uint32)  # [numel]
        if sym.size and int(symbols.max()) >= (1 << (8 * width)):
            raise OverflowError(f"symbol {int(symbols.max())} does not fit {width} byte(s)")
        u32p = ctypes.POINTER(ctypes.c_uint32)
        if self._variant is None and variant != 1:
            raise RuntimeLibraryError(f"{self.path} predates range variant {variant}: rebuild it with `make runtime`")

        def call(out_p, cap, out_len, err):
            if self._variant is not None:
                return self._variant(sym.ctypes.data_as(u32p), sym.size, width, period, variant, out_p, cap, out_len,
                                     err, 256)
            return self._lib.udc_range_encode(sym.ctypes.data_as(u32p), sym.size, width, period, out_p, cap, out_len,
                                              err, 256)

        return _encoded(call, 64 + sym.size * width + sym.size // 4, "range")  # above the usual size

    def decode(self, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
        """payload -> symbols uint32 [numel]; FormatError(CORRUPT_PAYLOAD) on a bad payload."""
        return _decoded(self._lib.udc_range_decode, payload, numel, width)


@functools.cache
def native_range() -> NativeRange:
    """The range coder of the native library; RuntimeLibraryError when it is not built."""
    return NativeRange()


# ---- coder 3, rans: the C++ encoder and decoder (FORMAT.md 5.3) --------------------------

class NativeRans:
    """ctypes binding of ``udc_rans_encode`` / ``udc_rans_decode`` (symbols <-> payload)."""

    def __init__(self, path: str | None = None):
        path, lib = _load_library(path)
        if not hasattr(lib, "udc_rans_encode"):
            raise RuntimeLibraryError(f"{path} predates the rans coder: rebuild it with `make runtime`")
        u8p, u32p, u32 = ctypes.POINTER(ctypes.c_uint8), ctypes.POINTER(ctypes.c_uint32), ctypes.c_uint32
        lib.udc_rans_encode.argtypes = [u32p, ctypes.c_uint64, u32, u32, u32, u32, u32, u8p, ctypes.c_size_t,
                                        ctypes.POINTER(ctypes.c_size_t), ctypes.c_char_p, ctypes.c_size_t]
        lib.udc_rans_encode.restype = ctypes.c_int
        lib.udc_rans_decode.argtypes = [u8p, ctypes.c_size_t, ctypes.c_uint64, u32, u32p, ctypes.c_char_p,
                                        ctypes.c_size_t]
        lib.udc_rans_decode.restype = ctypes.c_int
        self._elements = getattr(lib, "udc_rans_encode_elements", None)  # narrow symbols as they are
        if self._elements is not None:
            self._elements.argtypes = [ctypes.c_void_p, u32] + lib.udc_rans_encode.argtypes[1:]
            self._elements.restype = ctypes.c_int
        self._lib = lib
        self.path = path

    def encode(self, symbols: np.ndarray, width: int, *, lanes: int = 0, prob_bits: int = 0, contexts: int = 0,
               shift: int = 0) -> bytes:
        """symbols uint [numel] -> payload; a parameter of 0 is chosen by the encoder (the
        ctypes call releases the GIL, so tensors encode in parallel threads). uint8 and uint16
        symbols are read in place (no uint32 copy) when the library has udc_rans_encode_elements."""
        sym = np.asarray(symbols).reshape(-1)  # [numel]
        narrow = (self._elements is not None and sym.dtype.kind == "u" and sym.dtype.itemsize in (1, 2, 4)
                  and sym.dtype.isnative)
        sym = np.ascontiguousarray(sym) if narrow else np.ascontiguousarray(sym, dtype=np.uint32)  # [numel]
        u32p = ctypes.POINTER(ctypes.c_uint32)

        def call(out_p, cap, out_len, err):
            if narrow:
                return self._elements(sym.ctypes.data, sym.itemsize, sym.size, width, lanes, prob_bits, contexts,
                                      shift, out_p, cap, out_len, err, 256)
            return self._lib.udc_rans_encode(sym.ctypes.data_as(u32p), sym.size, width, lanes, prob_bits, contexts,
                                             shift, out_p, cap, out_len, err, 256)

        return _encoded(call, 256 + sym.size * width + sym.size // 8, "rans")  # above the usual size

    def decode(self, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
        """payload -> symbols uint32 [numel]; FormatError(CORRUPT_PAYLOAD) on a bad payload."""
        return _decoded(self._lib.udc_rans_decode, payload, numel, width)


@functools.cache
def native_rans() -> NativeRans:
    """The rans coder of the native library; RuntimeLibraryError when it is not built."""
    return NativeRans()


# ---- quantizer 1 on float32 weights: the encoder kernels (encode/scalar_quantize.h) -------

_WIDTH_DTYPES = {1: np.dtype("u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4")}


def _seed(seed: int) -> int:
    if not 0 <= seed < (1 << 64):
        raise ValueError(f"a dither seed is a uint64, got {seed}")
    return seed


class NativeScalar:
    """ctypes binding of ``udc_scalar_codes`` / ``udc_scalar_error`` / ``udc_symbol_histogram``:
    the float32 encoder of quantizer 1 (FORMAT.md 4.1) in one pass each, giving exactly the
    values of the numpy reference (onnx_udc.quantizers.scalar). The calls release the GIL."""

    def __init__(self, path: str | None = None):
        path, lib = _load_library(path)
        if not hasattr(lib, "udc_scalar_codes"):
            raise RuntimeLibraryError(f"{path} predates the scalar encoder kernels: rebuild it with `make runtime`")
        u64, u32, vp, cp, sz = ctypes.c_uint64, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t
        u32p = ctypes.POINTER(ctypes.c_uint32)
        lib.udc_scalar_codes.argtypes = [vp, u64, u64, ctypes.c_float, u64, u32, vp, u32p, u32p, cp, sz]
        lib.udc_scalar_codes.restype = ctypes.c_int
        lib.udc_scalar_error.argtypes = [vp, vp, u32, u64, u64, ctypes.c_float, u64, ctypes.POINTER(ctypes.c_double),
                                         cp, sz]
        lib.udc_scalar_error.restype = ctypes.c_int
        lib.udc_symbol_histogram.argtypes = [vp, u32, u64, vp, u64, u32p, cp, sz]
        lib.udc_symbol_histogram.restype = ctypes.c_int
        self._lib = lib
        self.path = path

    @staticmethod
    def _check(status: int, err) -> None:
        if status:
            _raise_status(status, err.value.decode(errors="replace"))

    def codes(self, weights: np.ndarray, step: float, seed: int, width: int, start: int = 0
              ) -> tuple[np.ndarray | None, int, bool]:
        """weights float32 [n] (elements start .. start+n-1 of the tensor) -> (zigzag codes
        uint of ``width`` bytes [n], or None when one does not fit; the largest code; True when
        an index overflows 32 bits or is not finite, the codes then None)."""
        w = np.ascontiguousarray(weights, dtype=np.float32).reshape(-1)  # [n]
        out = np.empty(w.size, dtype=_WIDTH_DTYPES[width])  # [n]
        top, flags = ctypes.c_uint32(0), ctypes.c_uint32(0)
        err = ctypes.create_string_buffer(256)
        self._check(self._lib.udc_scalar_codes(w.ctypes.data, w.size, start, step, _seed(seed), width,
                                               out.ctypes.data, ctypes.byref(top), ctypes.byref(flags), err, 256), err)
        overflow, too_wide = bool(flags.value & 1), bool(flags.value & 2)
        return (None if overflow or too_wide else out), int(top.value), overflow

    def error(self, weights: np.ndarray, codes: np.ndarray, step: float, seed: int, start: int = 0
              ) -> tuple[float, float]:
        """(sum of w^2, sum of (w_hat - w)^2) in float64 for float32 weights [n] and their codes
        uint{8,16,32} [n], w_hat the exact decode (float32(unzigzag(code)) - d) * step."""
        w = np.ascontiguousarray(weights, dtype=np.float32).reshape(-1)  # [n]
        c = np.ascontiguousarray(codes).reshape(-1)  # [n]
        if c.dtype not in _WIDTH_DTYPES.values() or c.size != w.size:
            raise ValueError(f"codes must be uint8/16/32 [{w.size}], got {c.dtype} [{c.size}]")
        sums = (ctypes.c_double * 2)(0.0, 0.0)
        err = ctypes.create_string_buffer(256)
        self._check(self._lib.udc_scalar_error(w.ctypes.data, c.ctypes.data, c.itemsize, w.size, start, step,
                                               _seed(seed), sums, err, 256), err)
        return float(sums[0]), float(sums[1])

    def histogram(self, symbols: np.ndarray, length: int) -> np.ndarray | None:
        """Counts int64 [length] of the values of symbols uint{8,16,32} [n] (np.bincount's),
        None when a symbol is >= length."""
        s = np.ascontiguousarray(symbols).reshape(-1)  # [n]
        if s.dtype not in _WIDTH_DTYPES.values():
            raise ValueError(f"symbols must be uint8/16/32, got {s.dtype}")
        counts = np.zeros(length, dtype=np.uint64)  # [length]
        fits = ctypes.c_uint32(0)
        err = ctypes.create_string_buffer(256)
        self._check(self._lib.udc_symbol_histogram(s.ctypes.data, s.itemsize, s.size, counts.ctypes.data, length,
                                                   ctypes.byref(fits), err, 256), err)
        return counts.view(np.int64) if fits.value else None


@functools.cache
def native_scalar() -> NativeScalar:
    """Quantizer 1's float32 encoder kernels; RuntimeLibraryError when the library lacks them."""
    return NativeScalar()
