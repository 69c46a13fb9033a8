"""A registry of strategies keyed by their FORMAT.md id and by name, filled by a decorator."""

from __future__ import annotations

from typing import Generic, TypeVar

from .errors import ConfigError, FormatError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, unknown_status: str):
        self.kind = kind  # "quantizer" / "coder", for messages
        self.unknown_status = unknown_status  # FormatError status of an unknown id in a blob
        self._by_id: dict[int, T] = {}
        self._by_name: dict[str, T] = {}

    def register(self, cls: type[T]) -> type[T]:
        """Class decorator: instantiate ``cls`` and file it under ``cls.id`` and ``cls.name``."""
        if cls.id in self._by_id or cls.name in self._by_name:
            raise RuntimeError(f"{self.kind} {cls.name} (id {cls.id}) registered twice")
        instance = cls()
        self._by_id[int(cls.id)] = instance
        self._by_name[cls.name] = instance
        return cls

    def by_id(self, strategy_id: int) -> T:
        try:
            return self._by_id[strategy_id]
        except KeyError:
            raise FormatError(f"unknown {self.kind} id {strategy_id}", self.unknown_status) from None

    def by_name(self, name: str) -> T:
        try:
            return self._by_name[name]
        except KeyError:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of {self.names()}") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)
