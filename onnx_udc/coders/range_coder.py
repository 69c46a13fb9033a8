"""Coder 2, range (FORMAT.md 5.2): adaptive context-modelling binary range coder.

    symbols [numel] --binarise (zero flag, unary class, sign, mantissa)--> bins
        --adaptive models, contexts: running mean magnitude at this vector position,
          class and previous sign for the sign--> 32-bit range coder --> payload = header + stream
    header: the period byte (1..255), or 0, variant, varint period
            variant 1: period up to 2^20; variant 2: one model set per vector position (period <= 8)

The encoder tries a few (period, variant) candidates and keeps the shortest payload (the
first on a tie): the quantizer's vector length; the tensor's row length (``row``: the
context is then the running magnitude of the same column in earlier rows, the scale of one
input feature); and for vectors of 2..8 coordinates, a model set per coordinate (the D4
index halves its last coordinate, whose statistics differ from the others').

Universal like brotli (it learns the statistics as it goes, no table is sent) but it
models the symbols themselves, not their bytes, so it stays at or below the order-0
entropy of the indices for any symbol width. Encoder and decoder are the C++ ones of
libonnx_udc.so (``udc_range_encode`` / ``udc_range_decode``), reached through ctypes; without
the library this coder raises RuntimeLibraryError. tests/range_reference.py is an
independent, slow pure-Python implementation of the same section, used to check both.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError
from ..format import CoderId
from ..native import native_range
from .base import Coder, register

MAX_PERIOD = 255  # the legacy header stores the period in one byte; longer vectors are clamped
MAX_ROW_PERIOD = 1 << 20  # the extended header's limit (FORMAT.md 5.2)
MAX_POSITION_SETS = 8  # variant 2's limit
VARIANT_PERIOD, VARIANT_POSITION_MODELS = 1, 2  # extended header variants (payload[1])


def _native():
    return native_range()  # the library is loaded on first use


def candidates(period: int, row: int) -> list[tuple[int, int]]:
    """The (context period, variant) pairs the encoder tries, in order: the vector length
    (clamped to 255; variant 1 then writes the one-byte header), the row length when it is a
    different, usable one, and a model set per position for vectors of 2..8 coordinates."""
    first = max(1, min(int(period), MAX_PERIOD))
    out = [(first, VARIANT_PERIOD)]
    if 2 <= row <= MAX_ROW_PERIOD and row != first:
        out.append((int(row), VARIANT_PERIOD))
    if 2 <= first <= MAX_POSITION_SETS:
        out.append((first, VARIANT_POSITION_MODELS))
    return out


@register
class RangeCoder(Coder):
    id = CoderId.RANGE
    name = "range"

    def encode(self, symbols: np.ndarray, width: int, period: int = 1, row: int = 0) -> bytes:
        native = _native()
        return min((native.encode(symbols, width, p, v) for p, v in candidates(period, row)), key=len)  # first shortest

    def decode(self, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
        out = _native().decode(payload, numel, width)  # uint32 [numel]
        if width < 4:
            out = out.astype(np.uint8 if width == 1 else np.uint16)
        if out.size != numel:
            raise FormatError(f"range payload decoded to {out.size} symbols, expected {numel}", "CORRUPT_PAYLOAD")
        return out
