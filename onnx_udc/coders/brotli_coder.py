"""Coder 1, brotli (RFC 7932): LZ77 + context modelling, a universal lossless coder.

    symbol bytes --brotli(quality, lgwin=24)--> payload --decompress--> symbol bytes

Brotli needs no prior model of the symbol statistics, which is what universal
quantization asks of its lossless stage. It reaches the order-0 entropy within about
1% on planar symbol bytes (FORMAT.md section 3).
"""

from __future__ import annotations

import brotli

from ..errors import FormatError
from ..format import CoderId
from .base import ByteCoder, register

QUALITY = 11
LGWIN = 24


@register
class BrotliCoder(ByteCoder):
    id = CoderId.BROTLI
    name = "brotli"

    def __init__(self, quality: int = QUALITY):
        self.quality = quality

    def encode_bytes(self, data: bytes) -> bytes:
        return brotli.compress(bytes(data), quality=self.quality, lgwin=LGWIN)

    def decode_bytes(self, payload: bytes | memoryview, expected_len: int) -> bytes:
        decoder = brotli.Decompressor()
        try:
            # output_buffer_limit stops a hostile stream from inflating past the size
            # the header promised; one extra byte detects "too long".
            out = decoder.process(bytes(payload), output_buffer_limit=expected_len + 1)
            finished = decoder.is_finished()
        except brotli.error as exc:
            raise FormatError(f"brotli payload is corrupt: {exc}", "CORRUPT_PAYLOAD") from None
        if len(out) != expected_len or not finished:
            raise FormatError(
                f"brotli payload decodes to {'more than ' if len(out) > expected_len else ''}{len(out)} bytes"
                f"{'' if finished else ' (stream incomplete)'}, expected {expected_len}",
                "CORRUPT_PAYLOAD",
            )
        return out
