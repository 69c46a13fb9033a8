"""The coder interface and the coder registry (filled by the @register decorator)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..registry import Registry
from ..format.symbols import from_planar, to_planar


class Coder(ABC):
    id: ClassVar[int]
    name: ClassVar[str]

    @abstractmethod
    def encode(self, symbols: np.ndarray, width: int, period: int = 1, row: int = 0) -> bytes:
        """symbols uint [numel] (each < 2^(8*width)) -> payload.

        ``period``: the symbols form vectors of this many consecutive symbols
        (``Encoded.period``); a coder may use it as context, and must then store it in
        the payload itself. ``row``: when the symbols are the tensor's elements in row-major
        order, the length of one row (all dimensions but the first; 0: unknown or not
        applicable), another context hint under the same rule.
        """

    @abstractmethod
    def decode(self, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
        """payload -> exactly ``numel`` symbols uint [numel], else FormatError(CORRUPT_PAYLOAD)."""


class ByteCoder(Coder):
    """A coder of the planar symbol bytes (FORMAT.md section 3): store and brotli."""

    def encode(self, symbols: np.ndarray, width: int, period: int = 1, row: int = 0) -> bytes:
        return self.encode_bytes(to_planar(symbols, width))

    def decode(self, payload: bytes | memoryview, numel: int, width: int) -> np.ndarray:
        return from_planar(self.decode_bytes(payload, numel * width), numel, width)

    @abstractmethod
    def encode_bytes(self, data: bytes) -> bytes:
        """planar symbol bytes -> payload."""

    @abstractmethod
    def decode_bytes(self, payload: bytes | memoryview, expected_len: int) -> bytes:
        """payload -> exactly ``expected_len`` planar bytes, else FormatError(CORRUPT_PAYLOAD)."""


REGISTRY: Registry[Coder] = Registry("coder", "UNKNOWN_CODER")
register = REGISTRY.register
by_id = REGISTRY.by_id
by_name = REGISTRY.by_name
names = REGISTRY.names
