"""The quantizer interface: a quantizer maps a tensor to unsigned symbols and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..format import BlobHeader, DType


@dataclass(frozen=True)
class Encoded:
    """What a quantizer produces for one tensor, before lossless coding."""

    symbols: np.ndarray  # uint64 or uint{8,16,32} [numel], row-major
    symbol_width: int
    step: float = 0.0
    seed: int = 0
    params: bytes = b""


class Quantizer(ABC):
    """One quantization strategy, identified by its FORMAT.md quantizer id."""

    id: ClassVar[int]
    name: ClassVar[str]
    dtypes: ClassVar[frozenset[DType]]
    lossless: ClassVar[bool] = False

    @abstractmethod
    def check(self, header: BlobHeader) -> None:
        """Raise ``FormatError`` if the header breaks this quantizer's rules."""

    @abstractmethod
    def encode(self, weights: np.ndarray, config: object, seed: int) -> Encoded:
        """weights [*shape] -> symbols [numel]."""

    @abstractmethod
    def decode(self, header: BlobHeader, symbols: np.ndarray) -> np.ndarray:
        """symbols uint [numel] -> elements [numel] of ``header.dtype`` (reference decoder)."""

    def check_dtype_and_width(self, header: BlobHeader, widths: tuple[int, ...]) -> None:
        from ..errors import FormatError

        if header.dtype not in self.dtypes:
            raise FormatError(f"quantizer {self.name} cannot produce {header.dtype.name}")
        if header.symbol_width not in widths:
            raise FormatError(f"quantizer {self.name} does not allow symbol width {header.symbol_width} for {header.dtype.name}")
