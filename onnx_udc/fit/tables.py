"""Data-driven codeword fine-tuning for the dithered scalar and lattice quantizers.

An encoder stage on quantized tensors (codec.Quantized, before entropy coding): the
indices and the dither stay as they are; only the codeword table (FORMAT.md 4.6) in the
params changes, so the format and both decoders are untouched.

    Quantized (scalar / A2 / D4 / E8; Quantizer.table_layout) --symbols--> vectors of n symbols [V, n]
      --unique--> keys u [U, n]: one table-entry candidate per distinct vector
    element (v, j): w_hat = (a_{u(v), j} - dither) * c_j   -- linear in the table values a:
        w_hat = w_hat_now + J (a - a_now),   J: element <- c_j * a_{u(v), j}
    layer rows wt [O, K] (graph.layers.axis_order), Gram H [gc, K, K] of the consumer's input
    (activations.ActivationProbe) --> minimise E(a) = sum_o (w_hat_o - w_o)^T H (w_hat_o - w_o)
        = ||X (W - W_hat)||^2 on the calibration activations:
      which keys: each key alone saves g_u^T A_u^-1 g_u (g = J^T H e, A_u its n x n block of
        J^T H J without the cross-terms between vectors); an entry costs 64 n bits, worth
        2 ln 2 * E / numel each at the tensor's rate (dE/dR at high rate, the weights-only
        rule of codewords.refine in output-error units); best first, at most max_entries
        (keys="table": exactly the keys of the blob's present table instead; "all": every key)
      values: joint least squares over the chosen entries, cross-terms included,
        by preconditioned conjugate gradients (matrix-free: J^T H J p; block-Jacobi A_u^-1)
    --> float32 values into a new table --> Quantized with new params, same symbols

model level (refine_encoded), bottom-up like pq_model.fit_model: the layers are taken in
graph order and each one's Gram is collected with the already-refined layers below it
decoded into the model (``chunk`` layers per pass over the calibration set).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from .. import quantizers
from ..codec import Quantized, dequantize, sqnr_db
from ..encoder import CompressConfig, CompressReport, EncodedTensor, make_plan, quantize_plan, write
from ..errors import ConfigError
from ..graph.layers import axis_order, constant_value, iter_graphs
from ..quantizers import codewords
from . import pq as pq_fit
from .activations import ActivationProbe, conv_rows, dense_rows, split_batch
from .calib import CalibrationSet

KEY_MODES = ("data", "table", "all")
OUTPUT_RIDGE = 1e-6  # output_target's ridge, relative to the mean eigenvalue of H
TARGETS = ("output", "weights")


def table_layout(header) -> codewords.TableLayout:
    """The layout of a quantizer with a codeword table (Quantizer.table_layout); ConfigError else."""
    q = quantizers.by_id(header.quantizer)
    q.check(header)
    layout = q.table_layout(header)
    if layout is None:
        raise ConfigError(f"codeword fine-tuning needs a quantizer with a codeword table (scalar, a lattice), not {q.name}")
    return layout


# ---- one tensor ---------------------------------------------------------------------------
@dataclass
class TableFit:
    entries: int  # table entries written
    candidates: int  # distinct vectors (keys)
    error_input: float  # output error of the blob as given (its own table, if any)
    error_start: float  # with the chosen keys at their start values, the others at their points
    error_final: float  # after the fine-tuning, float32 values (exactly what decodes)
    trace: list[float] = field(default_factory=list)  # objective after each CG iteration
    kept_input: bool = False  # the fine-tuning did not lower the error: the blob is unchanged


@dataclass(frozen=True)
class _Rows:
    """Stream positions laid out as the layer's rows wt [O, K]."""

    o: int
    k: int
    stream_of: np.ndarray  # int64 [O, K]: stream index of each row element
    row_of: np.ndarray  # int64 [N]: flat wt index of each stream element
    tensor_of: np.ndarray  # int64 [O*K]: row-major tensor index of each row element

    def take(self, w: np.ndarray) -> np.ndarray:
        """w [*shape] -> rows [O, K] (float64)."""
        return np.asarray(w, dtype=np.float64).reshape(-1)[self.tensor_of].reshape(self.o, self.k)


def _rows(shape: tuple[int, ...], order: tuple[int, ...], role: str) -> _Rows:
    numel = math.prod(shape)
    stream = np.arange(numel, dtype=np.int64).reshape(tuple(shape[a] for a in order))
    tensor = np.transpose(stream, np.argsort(order))  # [*shape]: stream index of each element
    porder = axis_order(role, shape)
    o = shape[porder[0]] if shape else 1
    stream_of = np.transpose(tensor, porder).reshape(o, -1)  # [O, K]
    row_of = np.empty(numel, np.int64)
    row_of[stream_of.reshape(-1)] = np.arange(numel)
    tensor_of = np.transpose(np.arange(numel, dtype=np.int64).reshape(shape), porder).reshape(-1)
    return _Rows(o, stream_of.shape[1], stream_of, row_of, tensor_of)


def _key_blocks(rows: _Rows, nvec: int, n: int, inverse: np.ndarray, u: int, scales: np.ndarray,
                gram: np.ndarray) -> np.ndarray:
    """A_u [U, n, n] = sum over the vectors of key u of C H_vv C (H_vv: the Gram between the
    vector's own elements when they lie in one row; cross-terms between vectors left out)."""
    flat = rows.row_of[: nvec * n].reshape(nvec, n)  # [V, n]
    r, col = np.divmod(flat, rows.k)  # [V, n]
    grp = r // (rows.o // gram.shape[0])  # [V, n] conv group of each element
    a = np.zeros((u, n, n))
    for i in range(n):
        for j in range(n):
            same = r[:, i] == r[:, j]
            h = gram[grp[:, i], col[:, i], col[:, j]] * same  # [V]
            a[:, i, j] = np.bincount(inverse, weights=h, minlength=u) * scales[i] * scales[j]
    return a


def _regularized_inverse(a: np.ndarray) -> np.ndarray:
    n = a.shape[-1]
    scale = np.maximum(np.trace(a, axis1=1, axis2=2) / n, 1e-30)  # [U]
    return np.linalg.inv(a + (1e-9 * scale)[:, None, None] * np.eye(n)[None])


def fit_table(
    quantized: Quantized, w: np.ndarray, role: str, gram: np.ndarray, *, iterations: int = 30,
    max_entries: int = 4096, keys: str = "data", target: np.ndarray | None = None, cost_scale: float = 1.0,
) -> tuple[Quantized, TableFit]:
    """One scalar / lattice tensor (codec.quantize) + its original weights w [*shape] + the Gram
    of the consumer's input gram [gc, K, K] -> the same symbols with a data-driven codeword
    table, and what changed.

    role: how the consumer reads w ("conv", "matmul_b", "gemm_b", "gemm_b_transposed").
    keys: "data" (choose entries by their output-error saving against their cost) or
    "table" (keep the keys of the blob's present table, e.g. the weights-only refinement,
    and re-solve their values on the data) or "all" (the first max_entries keys, whatever
    they cost). The result is never worse than the input blob
    on this Gram: if the fine-tuned table does not lower the error, the input is returned.
    cost_scale: multiplies the price of an entry (keys="data"; > 1: fewer entries).
    target [O, K]: the rows to approach instead of w's own (output_target: the original
    model's layer output, the error of the compressed layers below included).
    """
    if keys not in KEY_MODES:
        raise ConfigError(f"keys must be one of {KEY_MODES}, got {keys!r}")
    header = quantized.header
    lay = table_layout(header)
    shape = tuple(int(s) for s in header.shape)
    w = np.asarray(w, dtype=np.float64).reshape(shape)
    rows = _rows(shape, lay.order, role)
    if gram.ndim != 3 or gram.shape[1] != rows.k or rows.o % gram.shape[0]:
        raise ConfigError(f"a Gram of shape {gram.shape} does not fit {rows.o} rows of {rows.k} weights")
    n, numel = lay.n, header.numel
    nvec = numel // n
    symbols = quantized.symbols  # uint [numel]
    codes = np.asarray(symbols[: nvec * n], dtype=np.uint32).reshape(nvec, n)  # [V, n]
    key, first, inverse = np.unique(codes, axis=0, return_index=True, return_inverse=True)  # [U, n], [U], [V]
    inverse = inverse.reshape(-1)
    u = key.shape[0]
    base = lay.points(codes[first])  # float32 [U, n]: the default codewords
    now = base.copy()  # the values decoded today
    hit = codewords.lookup(lay.table, key)  # [U]
    now[hit >= 0] = lay.table.values[hit[hit >= 0]]

    # element -> variable (key * n + coordinate) and coefficient c_j, in row layout
    var_stream = np.full(numel, -1, np.int64)
    var_stream[: nvec * n] = (inverse[:, None] * n + np.arange(n)[None, :]).reshape(-1)
    coef_stream = np.zeros(numel)
    coef_stream[: nvec * n] = np.tile(lay.scales, nvec)
    var = var_stream[rows.stream_of]  # [O, K]
    coef = coef_stream[rows.stream_of]  # [O, K]
    mask = var >= 0
    wt = rows.take(w) if target is None else np.asarray(target, np.float64).reshape(rows.o, rows.k)  # [O, K]
    e_now = rows.take(dequantize(quantized)) - wt  # [O, K]

    def apply(e: np.ndarray) -> np.ndarray:
        return pq_fit._apply_gram(e, gram)

    def error(e: np.ndarray) -> float:
        return float(np.sum(e * apply(e)))

    def j_t(r: np.ndarray, index: np.ndarray, size: int) -> np.ndarray:  # [O, K] -> [size]
        return np.bincount(index[mask], weights=(coef * r)[mask], minlength=size)

    err_input = error(e_now)
    blocks = _key_blocks(rows, nvec, n, inverse, u, lay.scales, gram)  # [U, n, n]
    if keys == "table":
        chosen = np.flatnonzero(hit >= 0)
    elif keys == "all":
        chosen = np.arange(min(u, max_entries, codewords.MAX_ENTRIES))
    else:
        # saving of each key alone, from the blob as it decodes today
        g = j_t(apply(e_now), var, u * n).reshape(u, n)  # [U, n]
        saving = np.einsum("ui,uij,uj->u", g, _regularized_inverse(blocks), g)  # [U]
        cost = cost_scale * 2.0 * math.log(2.0) * err_input / max(numel, 1) * codewords.BITS_PER_COORD * n
        ranked = np.argsort(-saving, kind="stable")[: min(max_entries, codewords.MAX_ENTRIES)]
        chosen = np.sort(ranked[saving[ranked] > cost])
    # start: chosen keys at today's values, the others back at their points
    start = base.astype(np.float64)
    start[chosen] = now[chosen]
    delta0 = (start - now.astype(np.float64)).reshape(-1)  # [U*n]
    e_start = e_now + np.where(mask, coef * delta0[np.maximum(var, 0)], 0.0)
    err_start = error(e_start)
    trace = [err_start]
    values = start[chosen]  # [C, n]
    if chosen.size and iterations > 0:
        slot = np.full(u, -1, np.int64)
        slot[chosen] = np.arange(chosen.size)
        cvar = np.where(mask, slot[var // n] * n + var % n, -1)  # [O, K] variable among the chosen
        cmask = cvar >= 0
        size = chosen.size * n

        def jp(p: np.ndarray) -> np.ndarray:  # [C*n] -> [O, K]
            out = np.zeros((rows.o, rows.k))
            out[cmask] = coef[cmask] * p[cvar[cmask]]
            return out

        def jt(r: np.ndarray) -> np.ndarray:  # [O, K] -> [C*n]
            return np.bincount(cvar[cmask], weights=(coef * r)[cmask], minlength=size)

        pinv = _regularized_inverse(blocks[chosen])  # [C, n, n]

        def precond(r: np.ndarray) -> np.ndarray:
            return np.einsum("cij,cj->ci", pinv, r.reshape(-1, n)).reshape(-1)

        x = np.zeros(size)
        r = -jt(apply(e_start))  # the normal equations: (J^T H J) x = -J^T H e
        z = precond(r)
        p = z.copy()
        rz = float(r @ z)
        for _ in range(iterations):
            mp = jt(apply(jp(p)))
            denom = float(p @ mp)
            if not denom > 0:
                break
            alpha = rz / denom
            x += alpha * p
            r -= alpha * mp
            trace.append(error(e_start + jp(x)))
            z = precond(r)
            rz_new = float(r @ z)
            if rz_new <= 1e-20 * max(abs(rz), 1e-300):
                break
            p = z + (rz_new / rz) * p
            rz = rz_new
        values = values + x.reshape(-1, n)
    values32 = values.astype(np.float32)
    if not np.all(np.isfinite(values32)):
        raise ConfigError("fine-tuned codewords overflow float32")
    table = codewords.CodewordTable(key[chosen].astype(np.uint32), values32)
    new = quantized.with_params(lay.pack(table))
    err_final = error(rows.take(dequantize(new)) - wt)
    fit = TableFit(entries=int(chosen.size), candidates=u, error_input=err_input, error_start=err_start,
                   error_final=err_final, trace=trace)
    if not err_final < err_input:
        fit.kept_input, fit.entries, fit.error_final = True, lay.table.size, err_input
        return quantized, fit
    return new, fit


# ---- activations of the compressed and of the original model, on the same rows ------------
def paired_grams(
    probe_q: ActivationProbe, probe_f: ActivationProbe, batches: list, names: list[str],
    overrides: dict[str, np.ndarray], max_rows: int, seed: int, max_batch: int = 64,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (H = Xq^T Xq, C = Xq^T Xf), both float64 [g, K, K]: Xq the consumer's input rows
    in the compressed model (``overrides`` decoded in), Xf the same rows in the original model
    (same sampled positions: the two samplers share a seed and see the same shapes)."""
    wanted = sorted({probe_q.consumers[n].activation for n in names})
    acc: dict[str, list[np.ndarray]] = {}
    feeds_w = {k: np.ascontiguousarray(v, dtype=probe_q.probe.base[k].dtype).reshape(probe_q.probe.base[k].shape)
               for k, v in overrides.items() if k in probe_q.probe.base}
    rng_q, rng_f = np.random.default_rng(seed), np.random.default_rng(seed)
    for whole in batches:
        pieces = split_batch(whole, max_batch)
        rows_each = max(1, -(-max_rows // len(pieces)))
        for batch in pieces:
            out_q = probe_q._run(wanted, {**batch, **feeds_w})
            out_f = probe_f._run(wanted, dict(batch))
            for name in names:
                c = probe_q.consumers[name]
                take = conv_rows if c.role == "conv" else dense_rows
                xq = take(out_q[c.activation], c, rows_each, rng_q).astype(np.float64)  # [g, R, K]
                xf = take(out_f[c.activation], c, rows_each, rng_f).astype(np.float64)  # [g, R, K]
                h, cr = np.einsum("grk,grl->gkl", xq, xq), np.einsum("grk,grl->gkl", xq, xf)
                if name in acc:
                    acc[name][0] += h
                    acc[name][1] += cr
                else:
                    acc[name] = [h, cr]
    return {k: (v[0], v[1]) for k, v in acc.items()}


def output_target(w_rows: np.ndarray, h: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Rows t [O, K] with sum_o (w_hat_o - t_o)^T H (w_hat_o - t_o) = ||Xq W_hat - Xf W||^2 + const:
    t_o = w_o + (H + r I)^-1 (C - H) w_o  (= H^-1 C w_o for an invertible H). Written as a
    correction of w, the ridge r pulls t toward w, not toward 0, where the sampled rows do
    not span the input space (fewer rows than K: a MatMul on a few short sentences, a
    classifier on one row per image); there the error is unseen and w is the best guess."""
    gc, k, _ = h.shape
    o = w_rows.shape[0]
    ridge = (OUTPUT_RIDGE * np.trace(h, axis1=1, axis2=2) / k + 1e-30)[:, None, None] * np.eye(k)[None]
    wg = w_rows.reshape(gc, o // gc, k)  # [g, O/g, K]
    rhs = np.einsum("gkl,gol->gok", c - h, wg)  # [g, O/g, K]
    t = wg + np.linalg.solve(h + ridge, rhs.transpose(0, 2, 1)).transpose(0, 2, 1)  # [g, O/g, K]
    return t.reshape(o, k)


# ---- a whole compressed model, bottom-up ----------------------------------------------------
@dataclass
class LayerTable:
    name: str
    role: str
    fit: TableFit
    bytes_before: int
    bytes_after: int
    seconds: float


@dataclass
class ModelTables:
    layers: list[LayerTable]
    samples: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def extra_bytes(self) -> int:
        return sum(l.bytes_after - l.bytes_before for l in self.layers)


def refine_encoded(
    model: onnx.ModelProto,
    encoded: list[EncodedTensor],
    calib: CalibrationSet,
    *,
    keys: str = "data",
    iterations: int = 30,
    max_entries: int = 4096,
    max_rows: int = 1024,
    chunk: int = 1,
    target: str = "output",
    cost_scale: float = 1.0,
    threads: int | None = None,
    progress: Callable[[str], object] | None = None,
) -> tuple[list[EncodedTensor], ModelTables]:
    """Data-driven codeword tables for every scalar / lattice tensor of ``encoded`` whose
    weight is read directly by a Conv / MatMul / Gemm: an encoder stage between quantizing
    and entropy coding (returns a new list; tensors without a table are passed through).

    model: the uncompressed model (the targets W). Activations come from the model with
    every encoded tensor's exact decode in place, the layers already refined decoded with
    their new tables (bottom-up); ``chunk`` layers share one pass over the calibration set.
    max_rows: activation rows sampled per batch and layer. Other quantizers (pq, raw) and
    weights read otherwise (biases, embeddings) are left as they are.
    target: "output" minimises ||Xq W_hat - Xf W||^2 (Xf: the original model's activations,
    so each layer also corrects what the layers below got wrong); "weights" minimises
    ||Xq (W_hat - W)||^2 (the layer's own error only).
    """
    if target not in TARGETS:
        raise ConfigError(f"target must be one of {TARGETS}, got {target!r}")
    start = time.perf_counter()
    by_name = {e.name: e for e in encoded}
    eligible = [e.name for e in encoded if not e.planned.plan.exact and e.planned.source.node is None
                and quantizers.by_id(e.quantized.header.quantizer).table_layout(e.quantized.header) is not None]
    result = ModelTables(layers=[], samples=calib.samples, seconds=0.0)
    if calib.synthetic:
        result.warnings.append("calibration inputs are synthesized, not in-domain: the tables are fitted on noise")
    if not eligible:
        result.warnings.append("no scalar or lattice weight read by a Conv / MatMul / Gemm: nothing to fine-tune")
        return list(encoded), result
    dense = _with_decoded(model, encoded)  # the compressed model's weights, as plain initializers
    probe = ActivationProbe(dense, eligible, threads=threads)
    probe_f = ActivationProbe(model, eligible, threads=threads) if target == "output" else None
    layers = list(probe.consumers)  # graph order
    originals = {i.name: i for i in model.graph.initializer}
    overrides: dict[str, np.ndarray] = {}
    for s in range(0, len(layers), max(1, chunk)):
        group = layers[s : s + max(1, chunk)]
        if probe_f is None:
            grams = {k: (v.gram, None) for k, v in probe.stats(calib.batches, group, overrides, max_rows=max_rows,
                                                                 seed=s).items()}
        else:
            grams = paired_grams(probe, probe_f, calib.batches, group, overrides, max_rows, seed=s)
        for name in group:
            t0 = time.perf_counter()
            enc = by_name[name]
            w = numpy_helper.to_array(originals[name])
            role = probe.consumers[name].role
            h, cross = grams[name]
            rows_target = None
            if cross is not None:
                rows = _rows(tuple(w.shape), tuple(range(w.ndim)), role)
                rows_target = output_target(rows.take(w), h, cross)
            new_q, fit = fit_table(enc.quantized, w, role, h, iterations=iterations, max_entries=max_entries, keys=keys,
                                   target=rows_target, cost_scale=cost_scale)
            decoded = dequantize(new_q)
            overrides[name] = decoded
            if new_q is not enc.quantized:
                by_name[name] = EncodedTensor(enc.planned, new_q, sqnr_db(w, decoded),
                                              decoded if enc.decoded is not None else None)
            result.layers.append(LayerTable(name, role, fit, len(enc.quantized.header.params), len(new_q.header.params),
                                            time.perf_counter() - t0))
            if progress:
                progress(name)
    result.seconds = time.perf_counter() - start
    return [by_name[e.name] for e in encoded], result


def _with_decoded(model: onnx.ModelProto, encoded: list[EncodedTensor]) -> onnx.ModelProto:
    """A copy of ``model`` with every encoded main-graph initializer replaced by its exact decode."""
    dense = onnx.ModelProto()
    dense.CopyFrom(model)
    tensors = {i.name: i for i in dense.graph.initializer}
    for graph in iter_graphs(dense.graph):
        for node in graph.node:
            value = constant_value(node)
            if value is not None:
                tensors.setdefault(node.output[0], value)
    for e in encoded:
        if e.name in tensors and not e.planned.plan.exact:
            value = e.decoded if e.decoded is not None else dequantize(e.quantized)
            tensor = tensors[e.name]
            tensor.CopyFrom(numpy_helper.from_array(np.asarray(value), tensor.name))
    return dense


def compress_refined(
    model: onnx.ModelProto, config: CompressConfig, calib: CalibrationSet, *,
    encoded: list[EncodedTensor] | None = None, **kwargs
) -> tuple[onnx.ModelProto, CompressReport, ModelTables]:
    """Plan with ``config`` (or take ``encoded``, e.g. a rate allocation's choice), fit the
    tables (refine_encoded; keyword arguments go there), entropy-code each tensor once."""
    plan = make_plan(model, config)
    if encoded is None:
        encoded = quantize_plan(plan, keep_decoded=True)
    else:  # the tensors of another plan of the same model: re-point them at this plan's sources
        planned = plan.by_name()
        encoded = [EncodedTensor(planned[e.name], e.quantized, e.sqnr_db, e.decoded) for e in encoded]
    refined, tables = refine_encoded(model, encoded, calib, threads=config.threads, **kwargs)
    compressed, report = write(plan, refined)
    return compressed, report, tables
