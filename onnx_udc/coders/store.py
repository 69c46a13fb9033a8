"""Coder 0, store: the payload is the symbol bytes themselves."""

from __future__ import annotations

from ..errors import FormatError
from ..format import CoderId
from . import Coder, register


@register
class StoreCoder(Coder):
    id = CoderId.STORE
    name = "store"

    def encode(self, data: bytes) -> bytes:
        return bytes(data)

    def decode(self, payload: bytes | memoryview, expected_len: int) -> bytes:
        if len(payload) != expected_len:
            raise FormatError(f"stored payload has {len(payload)} bytes, expected {expected_len}", "CORRUPT_PAYLOAD")
        return bytes(payload)
