"""Coder 3, rans (FORMAT.md 5.3): static per-context frequency tables, interleaved rANS.

    symbols [numel] --tokens (32 direct values, then 4 per octave + raw extra bits)-->
        context = the running mean magnitude of the lane's previous symbols (shift, buckets)
        --one frequency table per context (sent in the payload)--> rANS, `lanes` contiguous
          segments decoded round by round with independent 32-bit states, one shared stream

Made for decode speed: a decoded symbol costs one table lookup, a multiply and at most one
16-bit read, and the lanes are independent (instruction-level parallelism on a core, and
the layout a SIMD or GPU decoder needs). The encoder chooses the lanes, the table
precision, the number of contexts and the context's decay by the payload size it
estimates. Encoder and decoder are the C++ ones of libonnx_udc.so (``udc_rans_encode`` /
``udc_rans_decode``), reached through ctypes; without the library this coder raises
RuntimeLibraryError. tests/rans_reference.py is an independent numpy decoder of the same
section, used to check the C++ one.
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError
from ..format import CoderId
from ..native import native_rans
from .base import Coder, register


@register
class RansCoder(Coder):
    id = CoderId.RANS
    name = "rans"

    def encode(self, symbols: np.ndarray, width: int, period: int = 1, row: int = 0) -> bytes:
        return native_rans().encode(symbols, width)

    def decode(self, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
        out = native_rans().decode(payload, numel, width)  # uint32 [numel]
        if width < 4:
            out = out.astype(np.uint8 if width == 1 else np.uint16)
        if out.size != numel:
            raise FormatError(f"rans payload decoded to {out.size} symbols, expected {numel}", "CORRUPT_PAYLOAD")
        return out
