"""Registry of lossless coders, keyed by FORMAT.md id and by name.

A coder turns the planar symbol bytes into a payload and back. Adding a coder is one
new module with a ``@register`` class plus its import below.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..registry import Registry


class Coder(ABC):
    id: ClassVar[int]
    name: ClassVar[str]

    @abstractmethod
    def encode(self, data: bytes) -> bytes:
        """symbol bytes -> payload."""

    @abstractmethod
    def decode(self, payload: bytes | memoryview, expected_len: int) -> bytes:
        """payload -> exactly ``expected_len`` symbol bytes, else FormatError(CORRUPT_PAYLOAD)."""


REGISTRY: Registry[Coder] = Registry("coder", "UNKNOWN_CODER")
register = REGISTRY.register
by_id = REGISTRY.by_id
by_name = REGISTRY.by_name
names = REGISTRY.names


from . import brotli_coder, store  # noqa: E402,F401  (registration)
