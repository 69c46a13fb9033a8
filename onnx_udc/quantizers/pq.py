"""Quantizer 5, product quantization (FORMAT.md 4.7): one centroid index per block of d weights.

    encode: w [*shape] --transpose(order)--> stream [numel] --cut, pad tail--> blocks [B, d]
            --fit (pq_fit: k-means or output-aware EM)--> centroids f16 [k, d], idx [B]
            symbols = idx (one per block, B = ceil(numel / d)); params = order, d, k, tail, centroids
    decode: idx [B] --centroids[idx]--> stream [B*d] --drop padding--> [numel]
            --transpose back--> w_hat [*shape] (float16 as stored, or float32 of it: exact)

The fitting itself (which centroids, which assignment) lives in ``onnx_udc.fit.pq``; this
module is the format: parameter packing, the reference decoder, and the encoder that turns
a fit into symbols ("And the Bit Goes Down", Stock et al., ICLR 2020; here the indices
are entropy-coded by the project's coders).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, FormatError
from ..format import BlobHeader, DType, QuantizerId
from .base import register
from .base import Encoded, Quantizer

MAX_K = 1 << 16
MAX_D = (1 << 16) - 1
TAIL_PAD = 0  # the only tail rule: the last block is padded, the decoder drops the padding
_FIXED = struct.Struct("<HIB")  # d (u16), k (u32), tail (u8), after the ndim order bytes


@dataclass(frozen=True)
class PQParams:
    """The params section of a pq blob (FORMAT.md 4.7)."""

    order: tuple[int, ...]  # axis order: numpy.transpose(w, order) is read row-major in blocks
    d: int  # block size
    centroids: np.ndarray  # float16 [k, d]
    tail: int = TAIL_PAD

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def pack(self) -> bytes:
        table = np.ascontiguousarray(self.centroids.astype("<f2", copy=False)).tobytes()
        return bytes(self.order) + _FIXED.pack(self.d, self.k, self.tail) + table


def params_len(ndim: int, d: int, k: int) -> int:
    return ndim + _FIXED.size + 2 * k * d


def width_for_k(k: int) -> int:
    """Symbol width of the indices: exactly 1 byte for k <= 256, else 2."""
    return 1 if k <= 256 else 2


def block_count(numel: int, d: int) -> int:
    return -(-numel // d)  # ceil; 0 for an empty tensor


def parse_params(header: BlobHeader) -> PQParams:
    """Validate and read the params of a pq blob; FormatError(BAD_HEADER) on any fault."""
    p, ndim = header.params, len(header.shape)
    if len(p) < ndim + _FIXED.size:
        raise FormatError(f"pq params have {len(p)} bytes, need at least {ndim + _FIXED.size}")
    order = tuple(p[:ndim])
    if sorted(order) != list(range(ndim)):
        raise FormatError(f"pq axis order {order} is not a permutation of {ndim} axes")
    d, k, tail = _FIXED.unpack_from(p, ndim)
    if not 1 <= d <= MAX_D:
        raise FormatError(f"pq block size {d} is not in [1, {MAX_D}]")
    if not 1 <= k <= MAX_K:
        raise FormatError(f"pq codebook size {k} is not in [1, {MAX_K}]")
    if tail != TAIL_PAD:
        raise FormatError(f"pq tail rule {tail} is unknown (0: pad)")
    if len(p) != params_len(ndim, d, k):
        raise FormatError(f"pq params have {len(p)} bytes, d={d}, k={k} need {params_len(ndim, d, k)}")
    table = np.frombuffer(p, dtype="<f2", count=k * d, offset=ndim + _FIXED.size).reshape(k, d)
    return PQParams(order=order, d=d, centroids=table, tail=tail)


# ---- the vector stream: invertible reshape helpers -------------------------------------
def to_blocks(w: np.ndarray, order: tuple[int, ...], d: int) -> np.ndarray:
    """w [*shape] -> blocks [B, d] of the transposed stream, the tail block zero-padded."""
    stream = np.transpose(np.asarray(w), order).reshape(-1)  # [numel]
    pad = block_count(stream.size, d) * d - stream.size
    return np.concatenate([stream, np.zeros(pad, stream.dtype)]).reshape(-1, d)  # [B, d]


def from_blocks(blocks: np.ndarray, shape: tuple[int, ...], order: tuple[int, ...]) -> np.ndarray:
    """blocks [B, d] -> w [*shape]: drop the padding, transpose back (inverse of to_blocks)."""
    numel = math.prod(shape)
    stream = blocks.reshape(-1)[:numel]  # [numel]
    transposed = stream.reshape(tuple(shape[a] for a in order))
    return np.transpose(transposed, np.argsort(order))


def reconstruct(params: PQParams, idx: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The decoder: w_hat[block b] = centroids[idx[b]]. idx int [B] -> float16 [*shape]."""
    return from_blocks(params.centroids[idx], shape, params.order)  # float16 [*shape]


# ---- encoder-side configuration ----------------------------------------------------------
@dataclass(frozen=True)
class PQFit:
    """A fitted tensor: what the encoder writes (centroids already rounded to float16)."""

    order: tuple[int, ...]
    d: int
    centroids: np.ndarray  # float16 [k, d]
    indices: np.ndarray  # int [B]


@dataclass(frozen=True)
class PQConfig:
    """Product quantization settings (block sizes per layer type, codebook size, EM).

    block: layer type -> block size d ("conv3x3", "conv1x1", "conv", "matmul", "other";
           see pq_fit.layer_type). A d that does not divide the length of one output's
           input run is lowered to the largest divisor of it that is >= 2 (else kept).
    k:     centroids per layer (256: one byte per index); lowered for small layers.
    k_large / large_min_blocks: a larger codebook (e.g. 1024, two-byte indices) for
           layers with at least that many blocks; None keeps k everywhere.
    iterations: EM (or k-means) iterations.
    fit:   a precomputed PQFit per tensor name (what calibration-driven fitting hands the
           encoder); tensors without one are fitted by plain k-means on their weights.
    """

    block: dict = field(default_factory=lambda: {"conv3x3": 9, "conv1x1": 4, "conv": 8, "matmul": 4, "other": 4})
    k: int = 256
    k_large: int | None = None
    large_min_blocks: int = 1 << 16
    iterations: int = 15
    seed: int = 0
    fit: PQFit | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.k <= MAX_K:
            raise ConfigError(f"k must lie in [1, {MAX_K}], got {self.k}")
        if self.k_large is not None and not 1 <= self.k_large <= MAX_K:
            raise ConfigError(f"k_large must lie in [1, {MAX_K}], got {self.k_large}")
        for role, d in self.block.items():
            if not (isinstance(d, int) and 1 <= d <= MAX_D):
                raise ConfigError(f"block size for {role} must be an integer in [1, {MAX_D}], got {d!r}")
        if self.iterations < 0:
            raise ConfigError(f"iterations must be >= 0, got {self.iterations}")


def encode_fit(fit: PQFit, numel: int) -> Encoded:
    """A fit -> symbols (one index per block) and params."""
    k = int(fit.centroids.shape[0])
    idx = np.asarray(fit.indices, dtype=np.int64).reshape(-1)  # [B]
    if idx.size != block_count(numel, fit.d):
        raise ConfigError(f"pq fit has {idx.size} indices, {numel} weights in blocks of {fit.d} need {block_count(numel, fit.d)}")
    if idx.size and (idx.min() < 0 or idx.max() >= k):
        raise ConfigError(f"pq fit has indices outside [0, {k})")
    params = PQParams(order=tuple(fit.order), d=fit.d, centroids=fit.centroids.astype(np.float16))
    return Encoded(symbols=idx.astype(np.uint64), symbol_width=width_for_k(k), params=params.pack(), period=1)


@register
class ProductQuantizer(Quantizer):
    id = QuantizerId.PQ
    name = "pq"
    dtypes = frozenset({DType.FLOAT, DType.FLOAT16})

    def symbol_count(self, header: BlobHeader) -> int:
        return block_count(header.numel, parse_params(header).d)

    def check(self, header: BlobHeader) -> None:
        self.check_dtype_and_width(header, (1, 2))
        if header.step != 0.0 or header.seed != 0:
            raise FormatError("pq quantizer requires step 0 and seed 0")
        params = parse_params(header)
        if header.symbol_width != width_for_k(params.k):
            raise FormatError(f"pq with k={params.k} needs symbol width {width_for_k(params.k)}, got {header.symbol_width}")

    def encode(self, weights: np.ndarray, config: PQConfig | None, seed: int) -> Encoded:
        """Writes a fit (``PQConfig.fit``); fitting itself is encoder-side work (onnx_udc.fit.pq)."""
        if not isinstance(config, PQConfig) or config.fit is None:
            raise ConfigError("the pq quantizer writes a fitted codebook: pass PQConfig(fit=...) "
                              "(onnx_udc.fit.pq.fit_weights, or compress with --quantizer pq)")
        return encode_fit(config.fit, np.asarray(weights).size)

    def decode(self, header: BlobHeader, symbols: np.ndarray) -> np.ndarray:
        params = parse_params(header)
        idx = symbols.astype(np.int64)  # [B]
        if idx.size and int(idx.max()) >= params.k:
            bad = int(np.argmax(idx >= params.k))
            raise FormatError(f"pq index {int(idx[bad])} of block {bad} is not below k={params.k}", "CORRUPT_PAYLOAD")
        w = reconstruct(params, idx, header.shape)  # float16 [*shape]
        return np.ascontiguousarray(w.astype(header.dtype.numpy)).reshape(-1)
