"""Helpers to build valid and deliberately broken blobs."""

import struct

import numpy as np

from onnx_udc.codec import encode_tensor
from onnx_udc.format import crc32
from onnx_udc.quantizers.scalar import ScalarConfig


def valid_blob(shape=(32, 48), seed=3, step_rel=0.1, dtype=np.float32) -> bytes:
    w = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return encode_tensor(w, config=ScalarConfig(step_rel=step_rel), seed=seed).blob


def reseal(blob: bytearray | bytes) -> bytes:
    """Recompute the checksum, so a test hits the check it means to hit."""
    blob = bytearray(blob)
    struct.pack_into("<I", blob, 12, crc32(blob))
    return bytes(blob)


def patch(blob: bytes, offset: int, fmt: str, value) -> bytes:
    out = bytearray(blob)
    struct.pack_into("<" + fmt, out, offset, value)
    return reseal(out)


# (name, make broken blob from a valid one, expected status)
BROKEN = [
    ("empty", lambda b: b"", "TRUNCATED"),
    ("short header", lambda b: b[:20], "TRUNCATED"),
    ("truncated payload", lambda b: b[:-1], "TRUNCATED"),
    ("trailing byte", lambda b: b + b"\0", "TRUNCATED"),
    ("bad magic", lambda b: patch(b, 0, "4s", b"ONNX"), "BAD_MAGIC"),
    ("future version", lambda b: patch(b, 4, "H", 2), "UNSUPPORTED_VERSION"),
    ("unknown quantizer", lambda b: patch(b, 6, "B", 200), "UNKNOWN_QUANTIZER"),
    ("unknown coder", lambda b: patch(b, 7, "B", 200), "UNKNOWN_CODER"),
    ("bad flags", lambda b: patch(b, 11, "B", 2), "BAD_HEADER"),
    ("padded flag, no valid pad count", lambda b: patch(b, 11, "B", 1), "BAD_HEADER"),
    ("bad width", lambda b: patch(b, 10, "B", 3), "BAD_HEADER"),
    ("zero step", lambda b: patch(b, 16, "f", 0.0), "BAD_HEADER"),
    ("nan step", lambda b: patch(b, 16, "f", float("nan")), "BAD_HEADER"),
    ("huge dim", lambda b: patch(b, 40, "Q", 1 << 41), "LIMIT_EXCEEDED"),
    ("too many elements", lambda b: patch(patch(b, 40, "Q", 1 << 30), 48, "Q", 1 << 30), "LIMIT_EXCEEDED"),
    ("checksum", lambda b: b[:-1] + bytes([b[-1] ^ 0x40]), "CHECKSUM_MISMATCH"),
    ("corrupt payload", lambda b: reseal(b[:60] + bytes(len(b) - 60)), "CORRUPT_PAYLOAD"),
    ("shape larger than payload", lambda b: patch(b, 40, "Q", 33), "CORRUPT_PAYLOAD"),
    ("shape smaller than payload", lambda b: patch(b, 40, "Q", 31), "CORRUPT_PAYLOAD"),
]
