"""Quantizer 0, raw: lossless, the symbols are the elements' own bits (FORMAT.md 4.0).

    weights [*shape] --view as uint of the same size--> symbols [numel]
"""

from __future__ import annotations

import numpy as np

from ..errors import FormatError
from ..format import BlobHeader, DType, QuantizerId
from .base import register
from .base import Encoded, Quantizer


@register
class RawQuantizer(Quantizer):
    id = QuantizerId.RAW
    name = "raw"
    dtypes = frozenset(DType)
    lossless = True

    def check(self, header: BlobHeader) -> None:
        self.check_dtype_and_width(header, (header.dtype.numpy.itemsize,))
        if header.step != 0.0 or header.seed != 0 or header.params:
            raise FormatError("raw quantizer requires step 0, seed 0 and no parameters")

    def encode(self, weights: np.ndarray, config: object = None, seed: int = 0) -> Encoded:
        flat = np.ascontiguousarray(weights).reshape(-1)  # [numel]
        width = flat.dtype.itemsize
        return Encoded(symbols=flat.view(f"<u{width}" if width > 1 else "u1"), symbol_width=width)

    def decode(self, header: BlobHeader, symbols: np.ndarray) -> np.ndarray:
        return symbols.view(header.dtype.numpy)
