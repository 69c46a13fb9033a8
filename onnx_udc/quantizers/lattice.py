"""Dithered lattice quantizers: what A2, D4 and E8 share (FORMAT.md 4.2).

    encode
    w [*shape] --transpose(perm)--> stream [N] --split--> vectors [V, n] + tail [r = N mod n]
    vectors --(w / c + u, nearest lattice point)--> P int [V, n] --lattice.to_signed--> S [V, n]
    tail --dithered scalar (FORMAT.md 4.1 formula, dither counter = stream position)--> q [r]
    (S, q) --zigzag--> symbols [N], in stream order, period n

    decode
    symbols --unzigzag, lattice.from_signed--> P [V, n]
    a = float32(P), or the codeword table's value for that vector's symbols
    stream = (a - u) * c     binary32, c [n] = float32(step * K) per coordinate
    stream [N] --reshape to the transposed shape, inverse transpose--> w_hat [*shape]

u is the vector's dither: z uniform on the box [0, box)^n (box * Z^n is a sublattice of
L, so z mod L is uniform over the cell) and u = z - Q_L(z). z has 24 random bits per
coordinate and Q_L(z) is decided on integers, so u is exact in binary32 and every decoder
computes the same bits. With subtractive dither the error is uniform over the Voronoi cell
scaled to volume step^n, independent of the weights: noise_power(step) = G(L) * step^2.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..format.dither import dither_chunk, mix64
from ..errors import ConfigError, FormatError
from ..format import BlobHeader, DType
from ..format.symbols import unzigzag, width_for, zigzag
from . import codewords
from .base import Encoded, Quantizer, StepConfig
from .scalar import entropy_bits

DITHER_BITS = 24  # random bits per coordinate: k = SplitMix64 output >> 40
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MAX_SIGNED = (1 << 31) - 1
_CHUNK_VECTORS = 1 << 17
_SOLVE_SAMPLE = 1 << 18  # elements used to solve target_bpw


@dataclass(frozen=True)
class LatticeConfig(StepConfig):
    """StepConfig plus what only vector quantizers need.

    axis_order: permutation of the tensor's axes; vectors are n consecutive elements
                of the transposed tensor (None: the identity, row-major order).
    """

    axis_order: tuple[int, ...] | None = None


# ---- vector grouping ------------------------------------------------------------------
def _identity(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(len(shape)))


def check_axis_order(order: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    order = tuple(int(a) for a in order)
    if sorted(order) != list(range(ndim)):
        raise ConfigError(f"axis order {order} is not a permutation of the {ndim} axes")
    return order


# ---- integer / float nearest-point building blocks ------------------------------------
def round_half_up(y: np.ndarray, unit) -> np.ndarray:
    """floor(y / unit + 1/2) as int64: ties go up. y int64 (exact) or float64 [..]."""
    if y.dtype.kind == "i":
        return (y + unit // 2) // unit
    return np.floor(y / unit + 0.5).astype(np.int64)


def nearest_dn(y: np.ndarray, unit) -> np.ndarray:
    """Conway-Sloane nearest point of D_n: y [V, n] (coordinates times ``unit``) -> int64 [V, n].

    Round every coordinate (ties up); if the sum is odd, round the coordinate farthest
    from its integer the other way instead (first such coordinate on ties; up when its
    offset is >= 0, down otherwise).
    """
    f = round_half_up(y, unit)  # [V, n]
    delta = y - f * unit  # [V, n] in [-unit/2, unit/2)
    rows = np.nonzero(f.sum(axis=1) & 1)[0]  # [odd]
    cols = np.argmax(np.abs(delta[rows]), axis=1)  # [odd] first maximum
    f[rows, cols] += np.where(delta[rows, cols] >= 0, 1, -1)
    return f


class Lattice(ABC):
    """One lattice in its integer coordinates: geometry, constants and the symbol map."""

    name: ClassVar[str]
    n: ClassVar[int]
    G: ClassVar[float]  # normalized second moment
    K: ClassVar[tuple[float, ...]]  # coordinate scale per step, binary32 values (FORMAT.md)
    box: ClassVar[int]  # box * Z^n is a sublattice: z is uniform on [0, box)^n

    @abstractmethod
    def nearest(self, y: np.ndarray, unit) -> np.ndarray:
        """y [V, n] (integer coordinates times unit; int64 exact or float64) -> P int64 [V, n]."""

    @abstractmethod
    def to_signed(self, p: np.ndarray) -> np.ndarray:
        """lattice points P int64 [V, n] -> signed symbols S int64 [V, n] (redundancy removed)."""

    @abstractmethod
    def from_signed(self, s: np.ndarray) -> np.ndarray:
        """S int64 [V, n] -> P int64 [V, n]; defined for every int32 S (hostile blobs)."""

    def scales(self, step: float) -> np.ndarray:
        """c float32 [n] = float32(step) * float32(K_j) in binary32."""
        return np.float32(step) * np.array(self.K, dtype=np.float32)


def dither_bits(seed: int, counters: np.ndarray) -> np.ndarray:
    """uint64 counters [...] (stream positions) -> int64 [...] k = SplitMix64(seed, i) >> 40."""
    with np.errstate(over="ignore"):
        x = mix64(np.uint64(seed) + (counters.astype(np.uint64) + np.uint64(1)) * _GOLDEN)
    return (x >> np.uint64(64 - DITHER_BITS)).astype(np.int64)


def vector_dither(lattice: Lattice, seed: int, vectors: np.ndarray) -> np.ndarray:
    """vector indices int64 [V] -> dither u float32 [V, n] (exact), u = z - Q_L(z)."""
    n = lattice.n
    counters = vectors.astype(np.int64)[:, None] * n + np.arange(n)  # [V, n]
    k = dither_bits(seed, counters)  # [V, n] z = k / unit
    unit = (1 << DITHER_BITS) // lattice.box
    residue = k - lattice.nearest(k, unit) * unit  # [V, n] integers, |residue| <= unit * box / 2
    return residue.astype(np.float32) * np.float32(1.0 / unit)


# ---- params: axis order + codeword table ---------------------------------------------
def pack_params(order: tuple[int, ...], table: codewords.CodewordTable) -> bytes:
    return bytes(order) + codewords.pack(table)


def parse_params(header: BlobHeader, n: int) -> tuple[tuple[int, ...], codewords.CodewordTable]:
    ndim = len(header.shape)
    params = header.params
    if len(params) < ndim:
        raise FormatError(f"params has {len(params)} bytes, the axis order needs {ndim}")
    order = tuple(params[:ndim])
    if sorted(order) != list(range(ndim)):
        raise FormatError(f"axis order {order} is not a permutation of the {ndim} axes")
    return order, codewords.parse(params[ndim:], n)


# ---- encoder helpers ------------------------------------------------------------------
def position_entropy(signed: np.ndarray) -> float:
    """Mean over vector positions of the order-0 entropy of signed symbols [V, n], bits/symbol."""
    if signed.size == 0:
        return 0.0
    return float(np.mean([entropy_bits(signed[:, j]) for j in range(signed.shape[1])]))


def quantize_vectors(lattice: Lattice, vec: np.ndarray, c: np.ndarray, seed: int, first: int = 0):
    """vec float64 [V, n] -> (P int64 [V, n], y float64 [V, n] = vec / c + u)."""
    v = vec.shape[0]
    p = np.empty((v, lattice.n), dtype=np.int64)
    y = np.empty((v, lattice.n))
    for s in range(0, v, _CHUNK_VECTORS):
        e = min(v, s + _CHUNK_VECTORS)
        u = vector_dither(lattice, seed, np.arange(first + s, first + e))  # [chunk, n]
        y[s:e] = vec[s:e] / c.astype(np.float64) + u
        p[s:e] = lattice.nearest(y[s:e], 1.0)
    return p, y


def solve_step(lattice: Lattice, vec: np.ndarray, seed: int, target_bpw: float, rms: float) -> float:
    """Step whose symbols have about ``target_bpw`` bits of position-wise order-0 entropy.

    Bisection on log2(step) over a strided sample of vectors (with their own dither); a
    tensor smaller than one vector keeps the default relative step.
    """
    if vec.shape[0] == 0:
        return StepConfig().step_rel * rms
    stride = max(1, vec.size // _SOLVE_SAMPLE)
    ids = np.arange(0, vec.shape[0], stride)
    sample = vec[ids]  # [S, n]
    u = vector_dither(lattice, seed, ids).astype(np.float64)
    lo, hi = math.log2(rms) - 30.0, math.log2(rms) + 8.0
    for _ in range(36):
        mid = 0.5 * (lo + hi)
        c = lattice.scales(2.0**mid).astype(np.float64)
        s = lattice.to_signed(lattice.nearest(sample / c + u, 1.0))
        if position_entropy(s) > target_bpw:
            lo = mid
        else:
            hi = mid
    return 2.0 ** (0.5 * (lo + hi))


def choose_step(config: StepConfig, rms: float, solve) -> float:
    if config.step is not None:
        step = config.step
    elif config.target_bpw is not None:
        step = solve()
    else:
        step = config.step_rel * rms
    return float(np.float32(step))


class LatticeQuantizer(Quantizer):
    """A registered lattice quantizer: subclasses set id, name and lattice."""

    lattice: ClassVar[Lattice]
    uses_axis_order = True
    has_step = True
    dtypes = frozenset({DType.FLOAT, DType.FLOAT16})

    def noise_power(self, step: float) -> float:
        return self.lattice.G * step * step

    def tensor_config(self, config: object, axis_order: tuple[int, ...]) -> object:
        """Vectors along ``axis_order`` unless the config names an order itself."""
        if config is None or getattr(config, "axis_order", None) is not None:
            return config
        fields = {f: getattr(config, f) for f in ("step_rel", "target_bpw", "step", "refine", "refine_max")}
        return LatticeConfig(**fields, axis_order=tuple(axis_order))

    def table_layout(self, header: BlobHeader) -> codewords.TableLayout:
        lat, n = self.lattice, self.lattice.n
        order, table = parse_params(header, n)

        def points(codes: np.ndarray) -> np.ndarray:
            signed = unzigzag(codes.reshape(-1)).astype(np.int64).reshape(-1, n)
            return lat.from_signed(signed).astype(np.float32)

        return codewords.TableLayout(n=n, order=order, scales=lat.scales(header.step).astype(np.float64), table=table,
                                     points=points, pack=lambda t: pack_params(order, t))

    def check(self, header: BlobHeader) -> None:
        self.check_dtype_and_width(header, (1, 2, 4))
        if not (math.isfinite(header.step) and header.step > 0):
            raise FormatError(f"{self.name} quantizer needs a finite step > 0, got {header.step}")
        parse_params(header, self.lattice.n)

    def encode(self, weights: np.ndarray, config: StepConfig | None, seed: int) -> Encoded:
        config = config if config is not None else LatticeConfig()
        lat, n = self.lattice, self.lattice.n
        weights = np.asarray(weights)
        order = getattr(config, "axis_order", None)
        order = check_axis_order(order, weights.ndim) if order is not None else _identity(weights.shape)
        stream = np.transpose(weights, order).reshape(-1).astype(np.float64)  # [N]
        rms = math.sqrt(float(np.mean(stream * stream))) if stream.size else 0.0
        if not (rms > 0 and math.isfinite(rms)):
            raise ConfigError(f"{self.name} quantizer needs a finite, non-zero tensor (use raw)")
        nvec = stream.size // n
        vec = stream[: nvec * n].reshape(nvec, n)  # [V, n]
        step = choose_step(config, rms, lambda: solve_step(lat, vec, seed, config.target_bpw, rms))
        c = lat.scales(step)  # float32 [n]
        p, y = quantize_vectors(lat, vec, c, seed)  # [V, n] each
        signed = lat.to_signed(p)  # [V, n]
        tail = stream[nvec * n :]  # [r]
        q = np.rint(tail / step + dither_chunk(seed, nvec * n, tail.size).astype(np.float64)).astype(np.int64)
        allsigned = np.concatenate([signed.reshape(-1), q])  # [N]
        if allsigned.size and int(np.abs(allsigned).max()) > _MAX_SIGNED:
            raise ConfigError(f"step {step:g} is too small for this tensor: symbols overflow 32 bits")
        codes = zigzag(allsigned)  # uint64 [N]
        table = codewords.empty(n)
        if config.refine and nvec:
            table = codewords.refine(codes[: nvec * n].reshape(nvec, n), y, p.astype(np.float32).astype(np.float64),
                                     c.astype(np.float64), self.noise_power(step), config.refine_max)
        width = width_for(int(codes.max()) if codes.size else 0)
        return Encoded(symbols=codes, symbol_width=width, step=step, seed=seed, params=pack_params(order, table),
                       period=n)

    def decode(self, header: BlobHeader, symbols: np.ndarray) -> np.ndarray:
        lat, n = self.lattice, self.lattice.n
        order, table = parse_params(header, n)
        total = header.numel
        nvec = total // n
        out = np.empty(total, dtype=np.float32)  # [N] stream order
        c = lat.scales(header.step)  # float32 [n]
        for s in range(0, nvec, _CHUNK_VECTORS):
            e = min(nvec, s + _CHUNK_VECTORS)
            codes = symbols[s * n : e * n].reshape(e - s, n).astype(np.uint32)  # [chunk, n]
            a = lat.from_signed(unzigzag(codes.reshape(-1)).astype(np.int64).reshape(e - s, n)).astype(np.float32)
            rows = codewords.lookup(table, codes)  # [chunk]
            hit = rows >= 0
            a[hit] = table.values[rows[hit]]
            u = vector_dither(lat, header.seed, np.arange(s, e))  # float32 [chunk, n]
            out[s * n : e * n] = ((a - u) * c).reshape(-1)
        q = unzigzag(symbols[nvec * n :]).astype(np.float32)  # [r]
        out[nvec * n :] = (q - dither_chunk(header.seed, nvec * n, total - nvec * n)) * np.float32(header.step)
        with np.errstate(over="ignore"):  # overflow to +-inf is the defined float16 result
            w = out.astype(header.dtype.numpy)
        transposed = tuple(header.shape[a] for a in order)
        return np.ascontiguousarray(np.transpose(w.reshape(transposed), np.argsort(order))).reshape(-1)


__all__ = ["LatticeConfig", "LatticeQuantizer", "Lattice", "nearest_dn", "round_half_up",
           "vector_dither"]
