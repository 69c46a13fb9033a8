"""What the decoder reads, as trainable torch tensors; the weight as a differentiable function
of them; and the way back to a ``codec.Quantized`` whose decode is exactly that weight.

    pq (4.7)              centroids f32 [k, d] (master copy)  --round to f16 (straight-through)-->
                          table[idx] [B, d] --drop padding, transpose back--> w [*shape]
    scalar (4.1, 4.6)     log-step s, table values v [U] (keys: the most used symbols)
                          a = v[row] where the symbol has an entry, else float32(q)
                          w = (a - d) * float32(step0 * exp(s))        binary32, as the decoder
    scalar_channel (4.8)  log-steps s [C]: w = (float32(q) - d) * float32(step0_c * exp(s_c))
    a2 / d4 / e8 (4.2)    log-step s, table values v [U, n]:
                          stream = (a - u) * (step * K) for the vectors, (q - d) * step for the tail

Indices, dither (format.dither, quantizers.lattice.vector_dither) and the layout come from
the project's own decoders' helpers; the forward pass evaluates the decoder's formula in
binary32 with the same operation order, so ``codec.dequantize(to_quantized())`` equals
``weight()`` bit for bit (tested). ``lr_scale`` makes one learning rate mean the same
relative change for every kind: weight units for centroids, steps for table values,
log units for steps.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .. import quantizers
from ..codec import Quantized
from ..errors import ConfigError
from ..format import DType, QuantizerId
from ..format.dither import dither, dither_chunk
from ..format.symbols import unzigzag
from ..quantizers import codewords
from ..quantizers import pq as pq_format
from ..quantizers import scalar_channel as channel_format
from ..quantizers.lattice import LatticeQuantizer, pack_params as lattice_params, parse_params as lattice_parse
from ..quantizers.lattice import vector_dither
from .errors import require_torch

_TINY = float(np.finfo(np.float32).tiny)


def _rms(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def _cast_out(t, w, dtype: DType):
    """The decoder's output conversion: binary32 -> binary16 with round-to-nearest-even."""
    return w.to(t.float16) if dtype is DType.FLOAT16 else w


def _back(t, stream, shape: tuple[int, ...], order: tuple[int, ...]):
    """stream [numel] in the transposed order -> w [*shape] (inverse of numpy.transpose(w, order))."""
    transposed = stream.reshape(tuple(shape[a] for a in order))
    return transposed.permute(*[int(i) for i in np.argsort(order)])


class Trainable:
    """One compressed tensor's decoder inputs as torch leaves."""

    kind: str = ""

    def __init__(self, name: str, quantized: Quantized):
        self.name = name
        self.quantized = quantized
        self.header = quantized.header

    def parameters(self) -> list[tuple[object, float]]:
        """(leaf tensor, lr_scale) pairs."""
        raise NotImplementedError

    def weight(self):
        """The decoded tensor [*shape] of the blob that to_quantized() would write."""
        raise NotImplementedError

    def to_quantized(self) -> Quantized:
        raise NotImplementedError

    def state(self) -> list[np.ndarray]:
        return [p.detach().numpy().copy() for p, _ in self.parameters()]

    def load(self, state: list[np.ndarray]) -> None:
        t = require_torch()
        with t.no_grad():
            for (p, _), v in zip(self.parameters(), state):
                p.copy_(t.from_numpy(v))

    def describe(self) -> str:
        return self.kind


# ---- pq ---------------------------------------------------------------------------------
class PQTrainable(Trainable):
    kind = "pq"

    def __init__(self, name: str, quantized: Quantized):
        super().__init__(name, quantized)
        t = require_torch()
        self.params = pq_format.parse_params(self.header)
        self.idx = t.from_numpy(quantized.symbols.astype(np.int64).reshape(-1))  # [B]
        start = self.params.centroids.astype(np.float32)  # [k, d] exact
        self.centroids = t.tensor(start, requires_grad=True)  # [k, d]
        self.scale = max(_rms(start), 1e-12)

    def parameters(self):
        return [(self.centroids, self.scale)]

    def weight(self):
        t = require_torch()
        c = self.centroids
        stored = c + (c.detach().to(t.float16).to(t.float32) - c.detach())  # f16 values, straight-through
        blocks = stored[self.idx]  # [B, d]
        stream = blocks.reshape(-1)[: self.header.numel]  # [numel]
        return _cast_out(t, _back(t, stream, self.header.shape, self.params.order), self.header.dtype)

    def to_quantized(self) -> Quantized:
        table = self.centroids.detach().numpy().astype(np.float16)  # [k, d]
        if not np.all(np.isfinite(table)):
            raise ConfigError(f"{self.name}: a trained centroid left the float16 range")
        packed = pq_format.PQParams(order=self.params.order, d=self.params.d, centroids=table).pack()
        return self.quantized.with_params(packed)

    def describe(self) -> str:
        return f"pq centroids {self.params.k}x{self.params.d}"


# ---- step and table quantizers --------------------------------------------------------------
def _choose_keys(codes: np.ndarray, present: np.ndarray, budget_entries: int) -> np.ndarray:
    """codes uint32 [V, n] -> keys uint32 [U, n] (lexicographically sorted): the keys of the
    blob's table plus the most used other keys, at most ``budget_entries`` in all (the present
    ones are always kept: dropping one would change the decode)."""
    keys, counts = np.unique(codes, axis=0, return_counts=True)  # sorted
    if keys.shape[0] == 0:
        return keys
    in_table = codewords.lookup(codewords.CodewordTable(present, np.zeros(present.shape, np.float32)), keys) >= 0 \
        if present.shape[0] else np.zeros(keys.shape[0], bool)
    room = max(0, budget_entries - int(in_table.sum()))
    others = np.flatnonzero(~in_table)
    best = others[np.argsort(-counts[others], kind="stable")[:room]]
    chosen = np.sort(np.concatenate([np.flatnonzero(in_table), best]))
    return keys[chosen]


class _TableMixin:
    """A codeword table with trainable values for ``keys`` (FORMAT.md 4.6)."""

    def _init_table(self, codes: np.ndarray, default: np.ndarray, table: codewords.CodewordTable,
                    budget_entries: int) -> None:
        t = require_torch()
        n = codes.shape[1]
        keys = _choose_keys(codes, table.keys, budget_entries) if codes.shape[0] else np.zeros((0, n), np.uint32)
        start = np.zeros(keys.shape, np.float32)  # [U, n]
        if keys.shape[0]:
            rows_here = codewords.lookup(codewords.CodewordTable(keys, start), codes)  # [V] row in keys or -1
            first = np.full(keys.shape[0], -1, np.int64)
            hit = np.flatnonzero(rows_here >= 0)
            first[rows_here[hit[::-1]]] = hit[::-1]
            start = default[first].astype(np.float32)  # [U, n] the point itself
            old = codewords.lookup(table, keys)  # [U]
            start[old >= 0] = table.values[old[old >= 0]]
        else:
            rows_here = np.full(codes.shape[0], -1, np.int64)
        self.keys = keys
        self.defaults = (default[first] if keys.shape[0] else start).astype(np.float32)  # [U, n]
        self.values = t.tensor(start, requires_grad=True)  # [U, n]
        self.hit = t.from_numpy(rows_here >= 0)[:, None]  # [V, 1]
        self.row = t.from_numpy(np.maximum(rows_here, 0))  # [V]
        self.points = t.from_numpy(default.astype(np.float32))  # [V, n]

    def _codewords(self):
        t = require_torch()
        if self.keys.shape[0] == 0:
            return self.points
        return t.where(self.hit, self.values[self.row], self.points)  # [V, n]

    def _table(self) -> codewords.CodewordTable:
        """The trained table, without entries that decode exactly like the point itself."""
        values = self.values.detach().numpy().astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise ConfigError(f"{self.name}: a trained codeword is not finite")
        changed = np.any(values != self.defaults, axis=1)  # [U]
        return codewords.CodewordTable(self.keys[changed].astype(np.uint32), values[changed])


def _step_value(t, step0: float, log_step):
    return t.tensor(np.float32(step0)) * t.exp(log_step)  # binary32


def _valid_step(value: float, name: str) -> float:
    if not (math.isfinite(value) and value >= _TINY):
        raise ConfigError(f"{name}: a trained step ({value!r}) is not a finite, normal, positive float32")
    return value


def _entry_budget(numel: int, n: int, symbols: np.ndarray, fraction: float) -> int:
    """Table entries worth ``fraction`` of the tensor's index bits (order-0 entropy), each
    64 n bits (FORMAT.md 4.6), at most codewords.MAX_ENTRIES."""
    from ..codec import symbol_entropy

    if fraction <= 0 or numel == 0:
        return 0
    bits = symbol_entropy(symbols) * numel
    return int(min(codewords.MAX_ENTRIES, fraction * bits // (codewords.BITS_PER_COORD * n)))


class ScalarTrainable(Trainable, _TableMixin):
    kind = "scalar"

    def __init__(self, name: str, quantized: Quantized, *, table_budget: float = 0.05, train_step: bool = True):
        super().__init__(name, quantized)
        t = require_torch()
        h = self.header
        codes = quantized.symbols.astype(np.uint32).reshape(-1, 1)  # [numel, 1]
        table = codewords.parse(h.params, 1) if h.params else codewords.empty(1)
        q = unzigzag(codes.reshape(-1)).astype(np.float32)[:, None]  # [numel, 1]
        self._init_table(codes, q, table, _entry_budget(h.numel, 1, quantized.symbols, table_budget))
        self.d = t.from_numpy(dither(h.seed, h.numel))  # [numel] float32
        self.log_step = t.zeros((), dtype=t.float32, requires_grad=train_step)
        self.train_step = train_step
        self.w_rms = max(_rms(quantizers.by_id(h.quantizer).decode(h, quantized.symbols)), 1e-12)

    def parameters(self):
        out = [(self.values, self.w_rms / self.header.step)] if self.keys.shape[0] else []
        return out + ([(self.log_step, 1.0)] if self.train_step else [])

    def step(self):
        return _step_value(require_torch(), self.header.step, self.log_step)

    def weight(self):
        t = require_torch()
        a = self._codewords().reshape(-1)  # [numel]
        w = (a - self.d) * self.step()  # binary32, FORMAT.md 4.1
        return _cast_out(t, w.reshape(self.header.shape), self.header.dtype)

    def to_quantized(self) -> Quantized:
        step = _valid_step(float(self.step().detach()), self.name)
        table = self._table()
        params = codewords.pack(table) if table.size else b""
        header = replace(self.header, step=step, params=params)
        quantizers.by_id(header.quantizer).check(header)
        return Quantized(header, replace(self.quantized.encoded, step=step, params=params), self.quantized.row)

    def describe(self) -> str:
        return f"scalar step + {self.keys.shape[0]} codewords"


class ChannelTrainable(Trainable):
    kind = "scalar_channel"

    def __init__(self, name: str, quantized: Quantized, **_):
        super().__init__(name, quantized)
        t = require_torch()
        h = self.header
        self.axis, steps = channel_format.parse_params(h)
        self.steps0 = t.from_numpy(steps.astype(np.float32).copy())  # [C]
        self.log_steps = t.zeros(steps.shape, dtype=t.float32, requires_grad=True)  # [C]
        self.chan = t.from_numpy(channel_format.channel_of_elements(h.shape, self.axis))  # [numel]
        self.a = t.from_numpy(unzigzag(quantized.symbols.reshape(-1)).astype(np.float32))  # [numel]
        self.d = t.from_numpy(dither(h.seed, h.numel))

    def parameters(self):
        return [(self.log_steps, 1.0)]

    def steps(self):
        return require_torch().exp(self.log_steps) * self.steps0  # [C] binary32

    def weight(self):
        t = require_torch()
        w = (self.a - self.d) * self.steps()[self.chan]  # binary32, FORMAT.md 4.8
        return _cast_out(t, w.reshape(self.header.shape), self.header.dtype)

    def to_quantized(self) -> Quantized:
        steps = self.steps().detach().numpy().astype(np.float32)
        if not all(channel_format.valid_step(float(s)) for s in steps):
            raise ConfigError(f"{self.name}: a trained channel step is not a finite, normal, positive float32")
        return self.quantized.with_params(channel_format.pack_params(self.axis, steps))

    def describe(self) -> str:
        return f"{self.steps0.numel()} channel steps"


class LatticeTrainable(Trainable, _TableMixin):
    kind = "lattice"

    def __init__(self, name: str, quantized: Quantized, *, table_budget: float = 0.05, train_step: bool = True):
        super().__init__(name, quantized)
        t = require_torch()
        h = self.header
        q = quantizers.by_id(h.quantizer)
        self.lat, n = q.lattice, q.lattice.n
        self.order, table = lattice_parse(h, n)
        total = h.numel
        self.nvec = nvec = total // n
        codes = quantized.symbols[: nvec * n].astype(np.uint32).reshape(nvec, n)  # [V, n]
        points = self.lat.from_signed(unzigzag(codes.reshape(-1)).astype(np.int64).reshape(nvec, n)).astype(np.float32)
        self._init_table(codes, points, table, _entry_budget(total, n, quantized.symbols, table_budget))
        self.u = t.from_numpy(vector_dither(self.lat, h.seed, np.arange(nvec)))  # [V, n]
        self.tail_a = t.from_numpy(unzigzag(quantized.symbols[nvec * n:]).astype(np.float32))  # [r]
        self.tail_d = t.from_numpy(dither_chunk(h.seed, nvec * n, total - nvec * n))  # [r]
        self.K = t.tensor(np.array(self.lat.K, dtype=np.float32))  # [n]
        self.log_step = t.zeros((), dtype=t.float32, requires_grad=train_step)
        self.train_step = train_step
        self.w_rms = max(_rms(q.decode(h, quantized.symbols)), 1e-12)

    def parameters(self):
        out = [(self.values, self.w_rms / self.header.step)] if self.keys.shape[0] else []
        return out + ([(self.log_step, 1.0)] if self.train_step else [])

    def step(self):
        return _step_value(require_torch(), self.header.step, self.log_step)

    def weight(self):
        t = require_torch()
        step = self.step()
        c = step * self.K  # [n] binary32, lattice.scales
        vectors = ((self._codewords() - self.u) * c).reshape(-1)  # [V*n]
        tail = (self.tail_a - self.tail_d) * step  # [r]
        stream = t.cat([vectors, tail])
        return _cast_out(t, _back(t, stream, self.header.shape, self.order), self.header.dtype)

    def to_quantized(self) -> Quantized:
        step = _valid_step(float(self.step().detach()), self.name)
        params = lattice_params(self.order, self._table())
        header = replace(self.header, step=step, params=params)
        quantizers.by_id(header.quantizer).check(header)
        return Quantized(header, replace(self.quantized.encoded, step=step, params=params), self.quantized.row)

    def describe(self) -> str:
        return f"{self.lat.name} step + {self.keys.shape[0]} codewords"


def trainable(name: str, quantized: Quantized, *, table_budget: float = 0.05,
              train_steps: bool = True) -> Trainable | None:
    """The trainable form of one compressed tensor; None for what has nothing to train (raw)."""
    qid = quantized.header.quantizer
    if qid == QuantizerId.PQ:
        return PQTrainable(name, quantized)
    if qid == QuantizerId.SCALAR:
        return ScalarTrainable(name, quantized, table_budget=table_budget, train_step=train_steps)
    if qid == QuantizerId.SCALAR_CHANNEL:
        return ChannelTrainable(name, quantized) if train_steps else None
    if isinstance(quantizers.by_id(qid), LatticeQuantizer):
        return LatticeTrainable(name, quantized, table_budget=table_budget, train_step=train_steps)
    return None
