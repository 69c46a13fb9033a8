"""Registry of quantizers, keyed by FORMAT.md id and by name.

Adding a quantizer is one new module with a ``@register`` class plus its import below.
"""

from __future__ import annotations

from ..errors import ConfigError, FormatError
from .base import Encoded, Quantizer

_BY_ID: dict[int, Quantizer] = {}
_BY_NAME: dict[str, Quantizer] = {}


def register(cls: type[Quantizer]) -> type[Quantizer]:
    instance = cls()
    if cls.id in _BY_ID or cls.name in _BY_NAME:
        raise RuntimeError(f"quantizer {cls.name} (id {cls.id}) registered twice")
    _BY_ID[cls.id] = instance
    _BY_NAME[cls.name] = instance
    return cls


def by_id(quantizer_id: int) -> Quantizer:
    try:
        return _BY_ID[quantizer_id]
    except KeyError:
        raise FormatError(f"unknown quantizer id {quantizer_id}", "UNKNOWN_QUANTIZER") from None


def by_name(name: str) -> Quantizer:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(f"unknown quantizer {name!r}; choose one of {sorted(_BY_NAME)}") from None


def names() -> list[str]:
    return sorted(_BY_NAME)


from . import raw, scalar  # noqa: E402,F401  (registration)

__all__ = ["Encoded", "Quantizer", "register", "by_id", "by_name", "names"]
