"""onnx-udc: universal dithered compression of ONNX weights.

    compress_model(model, CompressConfig(...)) -> (ModelProto, CompressReport)
    decompress_model(model) -> ModelProto        plain ONNX, no custom op left
    library_path() -> str                        the custom-op library to register
    InferenceSession(path)                       onnxruntime session, fast loader
    encode_tensor / decode_blob / inspect_blob   one tensor <-> one blob (FORMAT.md)
"""

from .codec import decode_blob, encode_tensor, inspect_blob
from .errors import (
    ChecksumError,
    ConfigError,
    FormatError,
    LimitError,
    ModelError,
    OutputError,
    RuntimeLibraryError,
    UdcError,
    UnsupportedVersionError,
)
from .format import DOMAIN, FORMAT_VERSION
from .graph import CompressConfig, CompressReport, compress_model, decompress_model, select
from .quantizers.base import StepConfig
from .quantizers.scalar import ScalarConfig
from .runtime import InferenceSession, NativeDecoder, library_path, session_options

__version__ = "0.1.0"

__all__ = [
    "ChecksumError", "CompressConfig", "CompressReport", "ConfigError", "DOMAIN", "FORMAT_VERSION",
    "FormatError", "InferenceSession", "LimitError", "ModelError", "NativeDecoder", "OutputError",
    "RuntimeLibraryError", "ScalarConfig", "StepConfig", "UdcError", "UnsupportedVersionError", "compress_model",
    "decode_blob", "decompress_model", "encode_tensor", "inspect_blob", "library_path", "select",
    "session_options",
]
