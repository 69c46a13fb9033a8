"""One tensor <-> one blob: the reference encoder and decoder.

    encode: tensor --quantizer--> symbols --coder--> payload --pack--> blob
    decode: blob --parse/validate--> payload --coder--> symbols --quantizer--> tensor

(store and brotli go through planar bytes inside the coder, FORMAT.md section 3.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import coders, quantizers
from .format import BlobHeader, DType, pack_blob, parse_blob


@dataclass(frozen=True)
class EncodeResult:
    blob: bytes
    header: BlobHeader
    entropy_bits: float  # empirical order-0 entropy of the symbols, bits per element


def symbol_entropy(symbols: np.ndarray) -> float:
    """Empirical order-0 entropy of unsigned symbols, bits per symbol."""
    if symbols.size == 0:
        return 0.0
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / symbols.size
    return float(-(p * np.log2(p)).sum())


def row_length(weights: np.ndarray, encoded) -> int:
    """Symbols per tensor row (all dimensions but the first) when the symbols are the
    elements in row-major order (one per element, period 1: scalar, raw), else 0: a context
    hint for the coder (Coder.encode). Lattice streams follow their own axis order."""
    if weights.ndim < 2 or weights.shape[0] == 0 or encoded.period != 1 or encoded.symbols.size != weights.size:
        return 0
    return int(weights.size // weights.shape[0])


def encode_tensor(
    weights: np.ndarray,
    quantizer: str = "scalar",
    coder: str = "brotli",
    config: object = None,
    seed: int = 0,
) -> EncodeResult:
    """weights [*shape] -> blob. ``config`` is the quantizer's config object."""
    weights = np.asarray(weights)
    q = quantizers.by_name(quantizer)
    c = coders.by_name(coder)
    encoded = q.encode(weights, config, seed)
    dtype = DType.from_numpy(weights.dtype)
    payload = c.encode(encoded.symbols, encoded.symbol_width, encoded.period, row=row_length(weights, encoded))
    header = BlobHeader(
        quantizer=q.id,
        coder=c.id,
        dtype=dtype,
        shape=tuple(int(d) for d in weights.shape),
        symbol_width=encoded.symbol_width,
        step=encoded.step,
        seed=encoded.seed,
        params=encoded.params,
        payload_len=len(payload),
    )
    q.check(header)
    blob = pack_blob(header, payload)
    return EncodeResult(blob=blob, header=parse_blob(blob)[0], entropy_bits=symbol_entropy(encoded.symbols))


def inspect_blob(blob: bytes | memoryview) -> BlobHeader:
    """Validate a blob's header, limits, checksum and quantizer/coder rules (no decoding)."""
    header, _ = parse_blob(blob)
    quantizers.by_id(header.quantizer).check(header)
    coders.by_id(header.coder)
    return header


def decode_blob(blob: bytes | memoryview) -> np.ndarray:
    """The Python reference decoder: blob -> tensor [*shape] of the blob's dtype."""
    header, payload = parse_blob(blob)
    q = quantizers.by_id(header.quantizer)
    q.check(header)
    count = q.symbol_count(header)  # numel, or one per block (pq)
    symbols = coders.by_id(header.coder).decode(payload, count, header.symbol_width)  # uint [count]
    return q.decode(header, symbols).reshape(header.shape)
