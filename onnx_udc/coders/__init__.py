"""Registry of lossless coders, keyed by FORMAT.md id and by name.

A coder turns the planar symbol bytes into a payload and back. Adding a coder is one
new module with a ``@register`` class plus its import below.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from ..errors import ConfigError, FormatError


class Coder(ABC):
    id: ClassVar[int]
    name: ClassVar[str]

    @abstractmethod
    def encode(self, data: bytes) -> bytes:
        """symbol bytes -> payload."""

    @abstractmethod
    def decode(self, payload: bytes | memoryview, expected_len: int) -> bytes:
        """payload -> exactly ``expected_len`` symbol bytes, else FormatError(CORRUPT_PAYLOAD)."""


_BY_ID: dict[int, Coder] = {}
_BY_NAME: dict[str, Coder] = {}


def register(cls: type[Coder]) -> type[Coder]:
    instance = cls()
    if cls.id in _BY_ID or cls.name in _BY_NAME:
        raise RuntimeError(f"coder {cls.name} (id {cls.id}) registered twice")
    _BY_ID[cls.id] = instance
    _BY_NAME[cls.name] = instance
    return cls


def by_id(coder_id: int) -> Coder:
    try:
        return _BY_ID[coder_id]
    except KeyError:
        raise FormatError(f"unknown coder id {coder_id}", "UNKNOWN_CODER") from None


def by_name(name: str) -> Coder:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown coder {name!r}; choose one of {sorted(_BY_NAME)}") from None


def names() -> list[str]:
    return sorted(_BY_NAME)


from . import brotli_coder, store  # noqa: E402,F401  (registration)
