"""Coder 2, range (FORMAT.md 5.2): adaptive context-modelling binary range coder.

    symbols [numel] --binarise (zero flag, unary class, sign, mantissa)--> bins
        --adaptive models, contexts: running mean magnitude at this vector position,
          class and previous sign for the sign--> 32-bit range coder --> payload = period byte + stream

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
from . import Coder, register

MAX_PERIOD = 255  # the payload stores the period in one byte; longer vectors are clamped


def _native():
    from ..runtime import native_range  # deferred: runtime imports the graph and onnxruntime

    return native_range()


@register
class RangeCoder(Coder):
    id = CoderId.RANGE
    name = "range"

    def encode(self, symbols: np.ndarray, width: int, period: int = 1) -> bytes:
        return _native().encode(symbols, width, max(1, min(int(period), MAX_PERIOD)))

    def decode(self, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
        out = _native().decode(payload, numel, width)  # uint32 [numel]
        if width < 4:
            out = out.astype(np.uint8 if width == 1 else np.uint16)
        if out.size != numel:
            raise FormatError(f"range payload decoded to {out.size} symbols, expected {numel}", "CORRUPT_PAYLOAD")
        return out
