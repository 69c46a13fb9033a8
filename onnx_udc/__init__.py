"""onnx-udc: universal dithered compression of ONNX weights.

    compress_model(model, CompressConfig(...)) -> (ModelProto, CompressReport)
    decompress_model(model) -> ModelProto        plain ONNX, no custom op left
    library_path() -> str                        the custom-op library to register
    InferenceSession(path)                       onnxruntime session, fast loader
    encode_tensor / decode_blob / inspect_blob   one tensor <-> one blob (FORMAT.md)

Sub-packages, bottom-up (each imports only those above it in this list):
    format      the blob of FORMAT.md (header, symbols, dither)
    quantizers  registered quantizers (tensor <-> symbols)     coders: lossless coders
    native      the C library through ctypes (decoder, range coder)
    codec       one tensor <-> one blob
    graph       layer-use analysis, selection, rewrite, model I/O
    encoder     per-tensor plans and the encode stage (each tensor coded once)
    fit         planners fitted on calibration data: allocation, PQ, codeword tables
    pipeline    one compression from a spec: planners, then the encode stage
    load        running compressed models: fast loader, portable path, verification
    cli         the ``onnx-udc`` command
"""

from .codec import decode_blob, encode_tensor, inspect_blob
from .encoder import CompressConfig, CompressReport, compress_model
from .errors import (
    ChecksumError,
    ConfigError,
    FidelityError,
    FormatError,
    LimitError,
    ModelError,
    OutputError,
    RuntimeLibraryError,
    UdcError,
    UnsupportedVersionError,
)
from .format import DOMAIN, FORMAT_VERSION
from .graph import decompress_model, select
from .load import InferenceSession, session_options
from .native import NativeDecoder, library_path
from .quantizers.base import StepConfig
from .quantizers.scalar import ScalarConfig

__version__ = "0.1.0"

__all__ = [
    "ChecksumError", "CompressConfig", "CompressReport", "ConfigError", "FidelityError", "DOMAIN", "FORMAT_VERSION",
    "FormatError", "InferenceSession", "LimitError", "ModelError", "NativeDecoder", "OutputError",
    "RuntimeLibraryError", "ScalarConfig", "StepConfig", "UdcError", "UnsupportedVersionError", "compress_model",
    "decode_blob", "decompress_model", "encode_tensor", "inspect_blob", "library_path", "select",
    "session_options",
]
