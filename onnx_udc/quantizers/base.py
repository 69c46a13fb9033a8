"""The quantizer interface: a quantizer maps a tensor to unsigned symbols and back."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..format import BlobHeader, DType
from ..registry import Registry


# Bundled example: 6.7x at unchanged accuracy (91.74-91.79% over 3 seeds vs 91.77%).
DEFAULT_STEP_REL = 0.2


@dataclass(frozen=True)
class StepConfig:
    """The step of a step-based quantizer (scalar, lattices), first match wins:

    step:       an absolute step (what rate allocation hands each tensor).
    target_bpw: solve the step per tensor so that the empirical (order-0) entropy of
                the indices is this many bits per weight.
    step_rel:   step = step_rel * RMS(w).
    refine:     store a table of least-squares codewords fitted to the weights
                (codewords.refine's rule; FORMAT.md 4.6), at most refine_max entries.

    For a lattice the step is the n-th root of the Voronoi cell's volume, so at high
    rate every quantizer spends about h(W) - log2(step) bits per weight and they differ
    only in the error power noise_power(step) = G(L) * step^2.
    """

    step_rel: float = DEFAULT_STEP_REL
    target_bpw: float | None = None
    step: float | None = None
    refine: bool = False
    refine_max: int = 4096

    def __post_init__(self) -> None:
        from ..errors import ConfigError
        from .codewords import MAX_ENTRIES

        if not (0 <= self.refine_max <= MAX_ENTRIES):
            raise ConfigError(f"refine_max must lie in [0, {MAX_ENTRIES}], got {self.refine_max}")

        if not (self.step_rel > 0 and math.isfinite(self.step_rel)):
            raise ConfigError(f"step_rel must be a positive number, got {self.step_rel}")
        if self.target_bpw is not None and not (0.05 <= self.target_bpw <= 24):
            raise ConfigError(f"target_bpw must lie in [0.05, 24], got {self.target_bpw}")
        if self.step is not None and not (self.step > 0 and math.isfinite(self.step)):
            raise ConfigError(f"step must be a positive number, got {self.step}")


@dataclass(frozen=True)
class Encoded:
    """What a quantizer produces for one tensor, before lossless coding."""

    symbols: np.ndarray  # uint64 or uint{8,16,32} [numel], row-major
    symbol_width: int
    step: float = 0.0
    seed: int = 0
    params: bytes = b""
    period: int = 1  # symbols form vectors of this many consecutive symbols (coders may use it as context)


class Quantizer(ABC):
    """One quantization strategy, identified by its FORMAT.md quantizer id."""

    id: ClassVar[int]
    name: ClassVar[str]
    dtypes: ClassVar[frozenset[DType]]
    lossless: ClassVar[bool] = False
    has_step: ClassVar[bool] = False  # one step per tensor, noise_power(step) known (rate allocation applies)
    uses_axis_order: ClassVar[bool] = False  # its symbols follow the layer's axis order (tensor_config sets it)

    @abstractmethod
    def check(self, header: BlobHeader) -> None:
        """Raise ``FormatError`` if the header breaks this quantizer's rules."""

    @abstractmethod
    def encode(self, weights: np.ndarray, config: object, seed: int) -> Encoded:
        """weights [*shape] -> symbols [numel]."""

    @abstractmethod
    def decode(self, header: BlobHeader, symbols: np.ndarray) -> np.ndarray:
        """symbols uint [numel] -> elements [numel] of ``header.dtype`` (reference decoder)."""

    def decode_pieces(self, header: BlobHeader, symbols: np.ndarray):
        """The reference decode as consecutive pieces of the flat tensor (row-major): an
        iterator of arrays of ``header.dtype`` whose concatenation is ``decode``. Quantizers
        whose elements decode independently yield bounded pieces (memory); the default is
        one piece."""
        yield self.decode(header, symbols)

    def tensor_config(self, config: object, axis_order: tuple[int, ...]) -> object:
        """The configuration for one tensor, given the axis order whose row-major run keeps
        one output's weights together (graph.layers.LayerUse.axis_order). Vector quantizers
        group along it; the default changes nothing."""
        return config

    def table_layout(self, header: BlobHeader):
        """How this quantizer's symbols become codewords (quantizers.codewords.TableLayout),
        for fitting a codeword table (FORMAT.md 4.6); None when it has no table."""
        return None

    def decode_error(self, header: BlobHeader, symbols: np.ndarray, weights: np.ndarray) -> tuple[float, float] | None:
        """(sum of w^2, sum of (w_hat - w)^2) in float64 for ``weights`` [*shape] and the exact
        decode w_hat of ``symbols``, computed without materialising the decode, when this
        quantizer has a fast way (codec.quantized_sqnr); None otherwise (the default). The
        terms are the reference's; only the order of the sums may differ."""
        return None

    def symbol_count(self, header: BlobHeader) -> int:
        """Symbols in the payload: one per element (numel), except for quantizers that emit
        one symbol per vector of weights (pq: one index per block). Called after check()."""
        return header.numel

    def noise_power(self, step: float) -> float:
        """Mean squared error per weight at this step (exact for subtractive dither:
        the error is uniform over the scaled Voronoi cell, independent of the weights)."""
        raise NotImplementedError(f"quantizer {self.name} has no step")

    def check_dtype_and_width(self, header: BlobHeader, widths: tuple[int, ...]) -> None:
        from ..errors import FormatError

        if header.dtype not in self.dtypes:
            raise FormatError(f"quantizer {self.name} cannot produce {header.dtype.name}")
        if header.symbol_width not in widths:
            raise FormatError(f"quantizer {self.name} does not allow symbol width {header.symbol_width} for {header.dtype.name}")


REGISTRY: Registry[Quantizer] = Registry("quantizer", "UNKNOWN_QUANTIZER")
register = REGISTRY.register
