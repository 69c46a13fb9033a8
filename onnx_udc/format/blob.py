"""The blob format of FORMAT.md, written once for reading and writing.

The fixed header is one ``struct`` layout (``_HEADER``); ``pack_blob`` writes it and
``parse_blob`` reads and validates it, so writer and reader cannot drift apart.
Quantizer- and coder-specific checks live in their registries.
"""

from __future__ import annotations

import enum
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from ..errors import ChecksumError, FormatError, LimitError, UnsupportedVersionError

__all__ = [
    "BLOB_SUFFIX", "BlobHeader", "CoderId", "DECODE_OP_TYPES", "DOMAIN", "DOMAIN_VERSION", "DType", "EXPANSION_FREE",
    "EXPANSION_RATIO", "FLAG_PADDED", "FORMAT_VERSION",
    "HEADER_SIZE", "MAGIC", "MAX_DIM", "MAX_NDIM", "MAX_NUMEL", "MAX_SYMBOL_BYTES", "QuantizerId", "VERSION", "crc32",
    "canonical_header", "expansion_limit", "pack_blob", "parse_blob",
]

MAGIC = b"UDCB"
VERSION = 1
FORMAT_VERSION = VERSION
MAX_NDIM = 8
MAX_DIM = 1 << 40
MAX_NUMEL = 1 << 34
MAX_SYMBOL_BYTES = 1 << 36
# flags bit 0: the payload section is coded || N zero bytes || N as u32 (FORMAT.md section 2).
FLAG_PADDED = 0x01
# Expansion limit: a blob of n bytes decodes to at most EXPANSION_FREE + EXPANSION_RATIO * n
# bytes (tensor and symbol stream alike); pack_blob pads the payload of a blob that would not.
EXPANSION_FREE = 1 << 20
EXPANSION_RATIO = 1024


_DTYPE_SIZES = {1: 4, 2: 1, 3: 1, 6: 4, 10: 2}  # DType code -> element bytes


def declared_bytes(numel: int, dtype: int, symbol_width: int) -> int:
    """What a header makes a decoder hold (FORMAT.md section 2): the tensor or its symbols,
    whichever is larger (an unknown dtype code counts 0: it is rejected elsewhere)."""
    return numel * max(_DTYPE_SIZES.get(int(dtype), 0), symbol_width)


def expansion_limit(blob_len: int) -> int:
    """The most decoded bytes a blob of blob_len bytes may declare (FORMAT.md section 2)."""
    return EXPANSION_FREE + EXPANSION_RATIO * blob_len
DOMAIN = "ai.onnx_udc"
DOMAIN_VERSION = 1
BLOB_SUFFIX = "__udc_blob"

# field            struct code  offset
_HEADER_FIELDS = (
    ("magic", "4s"),  # 0
    ("version", "H"),  # 4
    ("quantizer", "B"),  # 6
    ("coder", "B"),  # 7
    ("dtype", "B"),  # 8
    ("ndim", "B"),  # 9
    ("symbol_width", "B"),  # 10
    ("flags", "B"),  # 11
    ("checksum", "I"),  # 12
    ("step", "f"),  # 16
    ("params_len", "I"),  # 20
    ("seed", "Q"),  # 24
    ("payload_len", "Q"),  # 32
)
_HEADER = struct.Struct("<" + "".join(code for _, code in _HEADER_FIELDS))
HEADER_SIZE = _HEADER.size  # 40
_CHECKSUM_OFFSET = 12
assert HEADER_SIZE == 40


class DType(enum.IntEnum):
    """Element types a blob may decode to (ONNX ``TensorProto.DataType`` codes)."""

    FLOAT = 1
    UINT8 = 2
    INT8 = 3
    INT32 = 6
    FLOAT16 = 10

    @property
    def numpy(self) -> np.dtype:
        return np.dtype(_NUMPY[self])

    @property
    def op_type(self) -> str:
        """Name of the decode op in domain ``ai.onnx_udc`` that outputs this type."""
        return _OP_TYPE[self]

    @property
    def is_float(self) -> bool:
        return self in (DType.FLOAT, DType.FLOAT16)

    @classmethod
    def from_op_type(cls, op_type: str) -> "DType":
        for code, name in _OP_TYPE.items():
            if name == op_type:
                return code
        raise FormatError(f"{op_type} is not a decode op of domain {DOMAIN}")

    @classmethod
    def from_numpy(cls, dtype: np.dtype) -> "DType":
        for code, name in _NUMPY.items():
            if np.dtype(name) == np.dtype(dtype):
                return code
        raise FormatError(f"element type {np.dtype(dtype)} cannot be stored in a blob")


_NUMPY = {
    DType.FLOAT: "<f4",
    DType.UINT8: "u1",
    DType.INT8: "i1",
    DType.INT32: "<i4",
    DType.FLOAT16: "<f2",
}
_OP_TYPE = {
    DType.FLOAT: "Decode",
    DType.UINT8: "DecodeUInt8",
    DType.INT8: "DecodeInt8",
    DType.INT32: "DecodeInt32",
    DType.FLOAT16: "DecodeFloat16",
}
DECODE_OP_TYPES = frozenset(_OP_TYPE.values())


class QuantizerId(enum.IntEnum):
    RAW = 0
    SCALAR = 1
    # dithered lattice quantizers (FORMAT.md 4.2-4.5)
    A2 = 2
    D4 = 3
    E8 = 4
    PQ = 5  # product quantization (FORMAT.md 4.7)
    SCALAR_CHANNEL = 6  # dithered scalar, one step per channel (FORMAT.md 4.8)


class CoderId(enum.IntEnum):
    STORE = 0
    BROTLI = 1
    RANGE = 2
    RANS = 3


@dataclass(frozen=True)
class BlobHeader:
    """Every field of a blob except its payload (FORMAT.md section 2)."""

    quantizer: int
    coder: int
    dtype: DType
    shape: tuple[int, ...]
    symbol_width: int
    step: float = 0.0
    seed: int = 0
    params: bytes = b""
    payload_len: int = 0
    version: int = VERSION
    flags: int = 0
    checksum: int = 0

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded tensor."""
        return self.numel * self.dtype.numpy.itemsize

    @property
    def symbol_bytes(self) -> int:
        return self.numel * self.symbol_width

    @property
    def size(self) -> int:
        """Total blob length in bytes."""
        return HEADER_SIZE + 8 * len(self.shape) + len(self.params) + self.payload_len


def crc32(blob: bytes | memoryview) -> int:
    """CRC-32 of a blob without its checksum field (FORMAT.md section 2)."""
    view = memoryview(blob)
    return zlib.crc32(view[_CHECKSUM_OFFSET + 4 :], zlib.crc32(view[:_CHECKSUM_OFFSET])) & 0xFFFFFFFF


def canonical_header(header: BlobHeader) -> BlobHeader:
    """The header as a blob stores it (the step rounded to float32): what the decoder sees."""
    (step,) = struct.unpack("<f", struct.pack("<f", header.step))
    return header if step == header.step else BlobHeader(**{**header.__dict__, "step": step})


def _pad_for_expansion(header: BlobHeader, payload: bytes) -> tuple[int, bytes]:
    """(flags, payload section): the coded payload, padded (flag bit 0) when the blob would
    otherwise decode to more than its expansion limit allows."""
    fixed = HEADER_SIZE + 8 * len(header.shape) + len(header.params)
    decoded = declared_bytes(header.numel, header.dtype, header.symbol_width)
    if decoded <= expansion_limit(fixed + len(payload)):
        return header.flags & ~FLAG_PADDED, payload
    need = -(-(decoded - EXPANSION_FREE) // EXPANSION_RATIO)  # smallest blob length allowed
    pad = max(0, need - fixed - len(payload) - 4)  # < 2^26: decoded is at most 2^36 bytes
    return header.flags | FLAG_PADDED, payload + bytes(pad) + struct.pack("<I", pad)


def pack_blob(header: BlobHeader, payload: bytes) -> bytes:
    """Serialize header + payload, filling in ``payload_len`` and the checksum; a payload too
    small for the expansion limit is padded (FORMAT.md section 2)."""
    if len(header.shape) > MAX_NDIM:
        raise FormatError(f"{len(header.shape)} dimensions, at most {MAX_NDIM} allowed")
    flags, payload = _pad_for_expansion(header, payload)
    fixed = _HEADER.pack(
        MAGIC,
        header.version,
        int(header.quantizer),
        int(header.coder),
        int(header.dtype),
        len(header.shape),
        header.symbol_width,
        flags,
        0,
        header.step,
        len(header.params),
        header.seed,
        len(payload),
    )
    shape = struct.pack(f"<{len(header.shape)}Q", *header.shape)
    blob = bytearray(fixed + shape + header.params + payload)
    struct.pack_into("<I", blob, _CHECKSUM_OFFSET, crc32(blob))
    return bytes(blob)


def parse_blob(blob: bytes | memoryview) -> tuple[BlobHeader, memoryview]:
    """Read and validate the generic part of a blob; return its header and payload.

    Checks everything FORMAT.md lists except the quantizer- and coder-specific rules,
    which ``onnx_udc.codec`` applies through the registries.
    """
    view = memoryview(blob).cast("B")
    if len(view) < HEADER_SIZE:
        raise FormatError(f"blob has {len(view)} bytes, shorter than the {HEADER_SIZE}-byte header", "TRUNCATED")
    values = dict(zip((name for name, _ in _HEADER_FIELDS), _HEADER.unpack_from(view, 0)))
    if values["magic"] != MAGIC:
        raise FormatError(f"bad magic {values['magic']!r}, expected {MAGIC!r}: not an onnx-udc blob", "BAD_MAGIC")
    if values["version"] != VERSION:
        raise UnsupportedVersionError(
            f"blob format version {values['version']} is not supported (this build reads version {VERSION})"
        )
    ndim = values["ndim"]
    if ndim > MAX_NDIM:
        raise FormatError(f"ndim {ndim} exceeds {MAX_NDIM}")
    if values["flags"] & ~FLAG_PADDED:
        raise FormatError(f"flags {values['flags']:#x}: only bit 0 (padded payload) is defined")
    shape_end = HEADER_SIZE + 8 * ndim
    if len(view) < shape_end:
        raise FormatError(f"blob has {len(view)} bytes, its shape needs {shape_end}", "TRUNCATED")
    shape = struct.unpack_from(f"<{ndim}Q", view, HEADER_SIZE)
    for axis, dim in enumerate(shape):
        if dim > MAX_DIM:
            raise LimitError(f"dimension {axis} is {dim}, above the limit 2^40")
    numel = math.prod(shape)  # exact: Python integers do not overflow
    if numel > MAX_NUMEL:
        raise LimitError(f"tensor has {numel} elements, above the limit 2^34")
    if values["symbol_width"] not in (1, 2, 4):
        raise FormatError(f"symbol width {values['symbol_width']} is not 1, 2 or 4")
    if numel * values["symbol_width"] > MAX_SYMBOL_BYTES:
        raise LimitError(f"{numel} symbols of {values['symbol_width']} bytes exceed the 2^36-byte limit")
    declared = shape_end + values["params_len"] + values["payload_len"]
    if declared != len(view):
        raise FormatError(f"blob declares {declared} bytes but has {len(view)}", "TRUNCATED")
    decoded = declared_bytes(numel, values["dtype"], values["symbol_width"])  # an unknown dtype is rejected below
    if decoded > expansion_limit(len(view)):
        raise LimitError(
            f"a {len(view)}-byte blob declares {decoded} decoded bytes, above its expansion limit "
            f"2^20 + 1024 * blob length = {expansion_limit(len(view))}"
        )
    stored = values["checksum"]
    actual = crc32(view)
    if stored != actual:
        raise ChecksumError(f"checksum mismatch: stored {stored:#010x}, computed {actual:#010x}")
    try:
        dtype = DType(values["dtype"])
    except ValueError:
        raise FormatError(f"unsupported element type code {values['dtype']}") from None
    params_end = shape_end + values["params_len"]
    coded_end = len(view)
    if values["flags"] & FLAG_PADDED:
        coded_end = _padding_start(view, params_end)
    header = BlobHeader(
        quantizer=values["quantizer"],
        coder=values["coder"],
        dtype=dtype,
        shape=tuple(int(d) for d in shape),
        symbol_width=values["symbol_width"],
        step=values["step"],
        seed=values["seed"],
        params=bytes(view[shape_end:params_end]),
        payload_len=values["payload_len"],
        version=values["version"],
        flags=values["flags"],
        checksum=stored,
    )
    return header, view[params_end:coded_end]


def _padding_start(view: memoryview, payload_start: int) -> int:
    """Where the padding of a padded payload section view[payload_start:] begins."""
    length = len(view) - payload_start
    if length < 4:
        raise FormatError(f"padded payload has {length} bytes, less than its 4-byte pad count")
    (pad,) = struct.unpack_from("<I", view, len(view) - 4)
    if pad > length - 4:
        raise FormatError(f"pad count {pad} exceeds the {length - 4} payload bytes before it")
    start = len(view) - 4 - pad
    if any(view[start : len(view) - 4]):
        raise FormatError("pad bytes are not all 0")
    return start
