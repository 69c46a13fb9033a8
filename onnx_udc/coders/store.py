"""Coder 0, store: the payload is the symbol bytes themselves."""

from __future__ import annotations

from ..errors import FormatError
from ..format import CoderId
from .base import ByteCoder, register


@register
class StoreCoder(ByteCoder):
    id = CoderId.STORE
    name = "store"

    def encode_bytes(self, data: bytes) -> bytes:
        return bytes(data)

    def decode_bytes(self, payload: bytes | memoryview, expected_len: int) -> bytes:
        if len(payload) != expected_len:
            raise FormatError(f"stored payload has {len(payload)} bytes, expected {expected_len}", "CORRUPT_PAYLOAD")
        return bytes(payload)
