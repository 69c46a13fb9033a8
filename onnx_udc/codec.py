"""One tensor <-> one blob: the reference encoder and decoder, in two stages.

    quantize: tensor --quantizer--> Quantized (symbols + header without payload)
    pack:     Quantized --coder--> payload --pack--> blob
    decode:   blob --parse/validate--> payload --coder--> symbols --quantizer--> tensor

``dequantize(Quantized)`` is the reference decoder without the lossless stage: the same
bytes as ``decode_blob(pack(q).blob)``, so encoder-side stages (rate allocation, codeword
tables) work on ``Quantized`` objects and each tensor is entropy-coded once, at the end.
(store and brotli go through planar bytes inside the coder, FORMAT.md section 3.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from . import coders, quantizers
from .format import BlobHeader, DType, QuantizerId, canonical_header, pack_blob, parse_blob
from .quantizers.base import Encoded


@dataclass(frozen=True)
class Quantized:
    """One tensor after its quantizer, before lossless coding."""

    header: BlobHeader  # canonical (step as float32), coder 0 and payload_len 0 until packed
    encoded: Encoded
    row: int = 0  # context hint for the coder (row_length)

    @property
    def symbols(self) -> np.ndarray:
        return self.encoded.symbols

    def with_params(self, params: bytes) -> "Quantized":
        """The same symbols with other params (e.g. a refitted codeword table)."""
        q = quantizers.by_id(self.header.quantizer)
        header = replace(self.header, params=bytes(params))
        q.check(header)
        return Quantized(header, replace(self.encoded, params=bytes(params)), self.row)


@dataclass(frozen=True)
class EncodeResult:
    blob: bytes
    header: BlobHeader
    entropy_bits: float  # empirical order-0 entropy of the symbols, bits per element


def symbol_entropy(symbols: np.ndarray) -> float:
    """Empirical order-0 entropy of unsigned symbols, bits per symbol."""
    if symbols.size == 0:
        return 0.0
    top = int(symbols.max())
    if top < max(1 << 20, 4 * symbols.size):  # a counting pass (the same counts, in the same order)
        counts = _native_counts(symbols, top)
        if counts is None:
            counts = np.bincount(symbols.reshape(-1).astype(np.int64), minlength=1)
        counts = counts[counts > 0]
    else:  # a sparse alphabet: sort instead of a huge count array
        _, counts = np.unique(symbols, return_counts=True)
    p = counts / symbols.size
    return float(-(p * np.log2(p)).sum())


def _native_counts(symbols: np.ndarray, top: int) -> np.ndarray | None:
    """np.bincount's counts int64 [top + 1] of uint{8,16,32} symbols from the native library
    (one pass, no int64 copy of the symbols), or None without it."""
    from .quantizers.scalar import native_kernels

    kernels = native_kernels()
    if kernels is None or symbols.dtype not in (np.uint8, np.uint16, np.uint32):
        return None
    return kernels.histogram(symbols, top + 1)


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    """10 log10(|reference|^2 / |approx - reference|^2); inf when equal."""
    flat = np.asarray(approx).reshape(-1)
    return _sqnr_of_pieces(reference, (flat[i : i + _SQNR_CHUNK] for i in range(0, flat.size, _SQNR_CHUNK)))


_SQNR_CHUNK = 1 << 20


def _sqnr_of_pieces(reference: np.ndarray, pieces) -> float:
    """sqnr_db of ``reference`` against the consecutive flat pieces of its approximation,
    summed in float64 a piece at a time (no whole-tensor float64 copies)."""
    ref = np.asarray(reference).reshape(-1)
    signal = noise = 0.0
    start = 0
    for piece in pieces:
        r = ref[start : start + piece.size].astype(np.float64)
        err = piece.astype(np.float64) - r
        signal += float(np.dot(r, r))
        noise += float(np.dot(err, err))
        start += piece.size
    return _sqnr_of_sums(signal, noise)


def _sqnr_of_sums(signal: float, noise: float) -> float:
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-300) / noise)


def row_length(weights: np.ndarray, encoded) -> int:
    """Symbols per tensor row (all dimensions but the first) when the symbols are the
    elements in row-major order (one per element, period 1: scalar, raw), else 0: a context
    hint for the coder (Coder.encode). Lattice streams follow their own axis order."""
    if weights.ndim < 2 or weights.shape[0] == 0 or encoded.period != 1 or encoded.symbols.size != weights.size:
        return 0
    return int(weights.size // weights.shape[0])


def quantize(weights: np.ndarray, quantizer: str = "scalar", config: object = None, seed: int = 0) -> Quantized:
    """weights [*shape] -> Quantized. ``config`` is the quantizer's config object."""
    weights = np.asarray(weights)
    return from_encoded(weights, quantizer, quantizers.by_name(quantizer).encode(weights, config, seed))


def from_encoded(weights: np.ndarray, quantizer: str, encoded: Encoded) -> Quantized:
    """A quantizer's output for ``weights`` [*shape] -> Quantized (header checked). For
    encoder stages that choose the symbols themselves (fit.feedback's indices)."""
    q = quantizers.by_name(quantizer)
    header = canonical_header(BlobHeader(
        quantizer=q.id,
        coder=0,
        dtype=DType.from_numpy(weights.dtype),
        shape=tuple(int(d) for d in weights.shape),
        symbol_width=encoded.symbol_width,
        step=encoded.step,
        seed=encoded.seed,
        params=encoded.params,
    ))
    q.check(header)
    return Quantized(header, encoded, row_length(weights, encoded))


def dequantize(quantized: Quantized) -> np.ndarray:
    """The reference decoder of the symbols: tensor [*shape] of the header's dtype."""
    header = quantized.header
    return quantizers.by_id(header.quantizer).decode(header, quantized.symbols).reshape(header.shape)


def quantized_sqnr(weights: np.ndarray, quantized: Quantized) -> float:
    """sqnr_db(weights, dequantize(quantized)) without the whole decode in memory: the
    quantizer's decode_error when it has one (the same terms, summed in another order: equal
    to about 1e-12 dB), else its decode_pieces."""
    header = quantized.header
    q = quantizers.by_id(header.quantizer)
    sums = q.decode_error(header, quantized.symbols, weights)  # the native one pass, when there is one
    if sums is not None:
        return _sqnr_of_sums(*sums)
    return _sqnr_of_pieces(weights, q.decode_pieces(header, quantized.symbols))


AUTO_CODER = "auto"  # the default coder choice: what ``pack`` does with it is ``auto_coders``
CODER_CHOICES = (AUTO_CODER, *coders.names())


def auto_coders(quantized: Quantized) -> tuple[str, ...]:
    """The coders ``pack(q, "auto")`` tries, the smallest blob kept (the first on a tie):
    rans (FORMAT.md 5.3: as small as brotli at quality 11 on quantized weights, 3-6x faster
    to encode, faster to decode); for lossless tensors of 2- and 4-byte elements (float bit
    patterns, whose bytes brotli models better) brotli too. Without the native library
    (rans's encoder), brotli alone."""
    from .errors import RuntimeLibraryError
    from .native import native_rans

    try:
        native_rans()
    except RuntimeLibraryError:
        return ("brotli",)
    header = quantized.header
    if header.quantizer == QuantizerId.RAW and header.symbol_width > 1:
        return ("rans", "brotli")
    return ("rans",)


def pack(quantized: Quantized, coder: str = AUTO_CODER) -> EncodeResult:
    """Quantized -> blob: the lossless coder, then the header (FORMAT.md section 2).
    ``coder`` is a registered coder's name or "auto" (``auto_coders``)."""
    if coder == AUTO_CODER:
        return min((pack(quantized, name) for name in auto_coders(quantized)), key=lambda r: len(r.blob))
    c = coders.by_name(coder)
    enc = quantized.encoded
    payload = c.encode(enc.symbols, enc.symbol_width, enc.period, row=quantized.row)
    header = replace(quantized.header, coder=c.id, payload_len=len(payload))
    blob = pack_blob(header, payload)
    return EncodeResult(blob=blob, header=parse_blob(blob)[0], entropy_bits=symbol_entropy(enc.symbols))


def encode_tensor(
    weights: np.ndarray,
    quantizer: str = "scalar",
    coder: str = AUTO_CODER,
    config: object = None,
    seed: int = 0,
) -> EncodeResult:
    """weights [*shape] -> blob (quantize, then pack)."""
    return pack(quantize(weights, quantizer, config, seed), coder)


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
