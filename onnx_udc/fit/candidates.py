"""Fitted candidates for the rate allocation: product quantization and error-fed scalar
indices as more choices per tensor.

The allocation (fit.allocate) chooses each tensor's coding by its rate R and its share of
the output distortion a_l * P, with P the power of white noise in the weights (dithered
quantizers). A product quantizer fitted on the layer's input activations is not white
noise: its error is shaped away from the directions the inputs excite. Its effect on the
layer's output is what counts, so it enters the allocation at the white-noise power that
would give the same layer-output error:

    layer rows W [O, K] (graph.layers.axis_order), Gram H [gc, K, K] of the consumer's input
    white noise of power P per weight:  E ||X N||^2 = P * (O / gc) * sum_g tr H_g
    PQ fit W_hat:                        ||X (W - W_hat)||^2 = sum_o e_o^T H e_o
    P_eff = ||X (W - W_hat)||^2 / ((O / gc) * sum_g tr H_g)

    layers: Conv / MatMul / Gemm weights read directly by their node (activations.find_consumers)
    --ActivationProbe.stats (original weights, chunks of layers per pass)--> H per layer
    --pq_fit.fit_weights_traced at each k of PQ_KS (EM + centroid fine-tuning)--> PQFit
    --codec.quantize + pack (the configured coder)--> real bits per weight;  P_eff
    --> Candidate(bits, power, decoded weights, quantizer config) per (layer, k)

Error feedback (fit.feedback) keeps the scalar quantizers' decoder and step but chooses
the indices output-aware; it enters the same way, at its effective power, for the steps
the allocation asks for (fit.allocate: around its first predicted choice):

    --feedback.feedback_indices (scalar; scalar_channel where channel scales spread),
      and with its rate term when RDO_LAMBDA > 0 (label "... rdo"; off, see RDO_LAMBDA)
    --order-0 entropy of the symbols (as the step columns' rate_curve)--> bits;  P_eff
    --> Candidate(method "scalar" / "scalar_channel", step, symbols kept compact, decoded lazily)

The Grams are measured once per layer (LayerGrams) for both. Fitting is bounded by a
``budget`` of work units (fit.cost.feedback_work / pq_work: predicted from each layer's
shape, about a second of the reference machine each, never read from a clock, so the same
inputs give the same candidates on any machine): the largest layers first, so the budget
goes where the bytes are; a layer whose predicted work no longer fits keeps the step
quantizers only, and smaller ones after it may still fit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..codec import dequantize, from_encoded, pack, quantize, symbol_entropy
from ..encoder import CompressConfig
from ..errors import ConfigError
from ..format.dither import derive_seed, dither
from ..format.symbols import width_for, zigzag
from ..graph.layers import axis_order, run_length
from ..quantizers.base import Encoded, StepConfig
from ..quantizers.pq import PQConfig, to_blocks
from ..quantizers.scalar_channel import ChannelConfig, MIN_REL, channel_rms, pack_params, valid_step
from . import feedback
from . import pq as pq_fit
from .activations import ActivationProbe, find_consumers
from .calib import CalibrationSet
from .cost import feedback_work, pq_work

PQ_KS = (16, 64, 256)  # codebook sizes tried per layer (lowered for small layers: pq_fit.choose_k)
PQ_REFINE = 10  # conjugate-gradient iterations of the centroid fine-tuning
EM_BLOCKS = 1 << 14  # blocks the EM of one candidate sees at most (then every block is assigned once)
EM_ITERATIONS = 8
PQ_BUDGET = 60.0  # work units (fit.cost.pq_work) of fitting over one call
LAYERS_PER_PASS = 8  # layers whose activations one calibration pass collects (bounds memory)
GRAM_ROWS = 2048  # activation rows sampled per calibration batch and layer for its Gram
FEEDBACK_BUDGET = 60.0  # work units (fit.cost.feedback_work) of error feedback over one call
CHANNEL_SPREAD = 4.0  # max / min channel RMS above which feedback also tries per-channel steps
# Rate term of rate-distortion-optimised feedback twins (squared steps per bit); 0: none.
# Off: on the bundled ResNet-20 the planner chose the twins (lam 0.05 / 0.1) for 17-18 of
# 19 layers and the default command's file came out 2.5-4.7% larger (11.93x / 11.66x
# against 12.23x) at lower test agreement: their order-0 rate saving is not what the
# coder's context models save, and their extra output error is larger than the step
# curve's for the same bytes on most layers (tools/research/feedback_rdo_ab.py reproduces the numbers).
RDO_LAMBDA = 0.0


@dataclass
class Candidate:
    """One fitted coding of one tensor, for the allocation's table."""

    method: str  # the registered quantizer ("pq", "scalar", "scalar_channel")
    label: str  # e.g. "pq d9 k64", "scalar feedback"
    config: object  # the quantizer's config (PQConfig with its fit, StepConfig): CompressConfig.quantizer_configs
    quantized: object  # codec.Quantized: what the encoder writes
    blob_bytes: float  # the coded blob (configured coder), or its order-0 estimate (feedback)
    power: float  # P_eff: the white-noise power per weight with the same layer-output error
    step: float | None = None  # the tensor's step (step quantizers)
    exact_decode: np.ndarray | None = None  # kept when given; else decoded from the symbols when asked

    @property
    def decoded(self) -> np.ndarray:
        """The exact decode [*shape], as the decoders produce it."""
        return self.exact_decode if self.exact_decode is not None else dequantize(self.quantized)

    def bits(self, numel: int) -> float:
        return 8.0 * self.blob_bytes / max(1, numel)


@dataclass(frozen=True)
class Request:
    """What the allocation asks for one tensor: its step quantizer's bits per weight at the
    first predicted lambda (PQ pays only at low rates) and the steps to fit feedback at."""

    bits: float
    steps: tuple[float, ...] = ()


def effective_power(w: np.ndarray, w_hat: np.ndarray, fit_order: tuple[int, ...], d: int, gram: np.ndarray) -> float:
    """w, w_hat [*shape]; gram [gc, K, K] -> P_eff (module docstring)."""
    kdim = gram.shape[1]
    wt = to_blocks(np.asarray(w, dtype=np.float64), fit_order, d).reshape(-1, kdim)  # [O, K]
    wht = to_blocks(np.asarray(w_hat, dtype=np.float64), fit_order, d).reshape(-1, kdim)
    err = pq_fit.output_error(wt, wht, gram)
    gc = gram.shape[0]
    white = (wt.shape[0] / gc) * float(sum(np.trace(g) for g in gram))
    return err / white if white > 0 else float("inf")


class Candidates(dict):
    """name -> [Candidate], with the seconds the fitting took and the work units it was
    charged (fit.cost: predicted from the shapes; what the budgets count)."""

    seconds: float = 0.0
    work: float = 0.0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.skipped: list[str] = []  # left out by the work budget (not fitted, not tried)


def shrunk_gram(gram: np.ndarray, rows: int) -> np.ndarray:
    """gram [g, K, K] summed over ``rows`` sampled rows -> (1 - a) H + a diag(H), a = K / (K + rows).

    A Gram of fewer rows than columns is singular: error feedback and PQ fitted on it push
    the error into directions the fit samples never excite and unseen inputs do (a 64-input
    layer fitted on 24 samples: 30 dB on the fit samples, 18 dB held out). Shrinking toward
    the diagonal (on which feedback is plain rounding) keeps what the samples can tell apart;
    with rows >> K it changes little."""
    k = gram.shape[-1]
    a = k / (k + max(rows, 0))
    diag = np.einsum("gii->gi", gram)
    out = gram * (1.0 - a)
    idx = np.arange(k)
    out[:, idx, idx] += a * diag
    return out


@dataclass(frozen=True)
class LayerGram:
    """A layer's input Grams from two disjoint halves of the calibration pieces: ``fit``
    (shrunk_gram) is what a candidate is fitted on, ``check`` what its effective power is
    measured on, so that a fit which learned its samples' noise is not believed by the
    allocation. With a single calibration piece both are the same Gram."""

    role: str
    fit: np.ndarray  # float64 [gc, K, K]
    check: np.ndarray  # float64 [gc, K, K]


def split_pieces(batches: list, max_batch: int = 64) -> tuple[list, list]:
    """Calibration batches -> (fit pieces, check pieces): each batch cut in two (pieces of
    at most ``max_batch`` samples), the pieces dealt alternately; a batch of one sample (a
    whole feed) goes whole to one side, alternately too."""
    from .activations import split_batch
    from .calib import batch_rows

    pieces: list = []
    for b in batches:
        pieces += split_batch(b, max(1, min(max_batch, -(-batch_rows(b) // 2))))
    if len(pieces) < 2:
        return pieces, pieces
    return pieces[0::2], pieces[1::2]


class LayerGrams:
    """The input Grams of every weight a Conv / MatMul / Gemm reads directly, measured on the
    calibration batches with the original weights (LAYERS_PER_PASS layers per pass), each
    once: ``get(names)`` -> {name: LayerGram}."""

    def __init__(self, model: onnx.ModelProto, calib: CalibrationSet, config: CompressConfig,
                 max_rows: int = GRAM_ROWS):
        self.model, self.calib, self.config, self.max_rows = model, calib, config, max_rows
        names = [i.name for i in model.graph.initializer]
        self.consumers = find_consumers(model, names)
        self._probe: ActivationProbe | None = None
        self._grams: dict[str, LayerGram] = {}
        self._halves = split_pieces(calib.batches)
        self._passes = 0
        self.seconds = 0.0

    def get(self, names) -> dict[str, LayerGram]:
        todo = [n for n in dict.fromkeys(names) if n in self.consumers and n not in self._grams]
        if todo:
            start = time.perf_counter()
            if self._probe is None:
                self._probe = ActivationProbe(self.model, sorted(self.consumers), threads=self.config.threads)
            fit_pieces, check_pieces = self._halves
            for s in range(0, len(todo), LAYERS_PER_PASS):
                group = todo[s : s + LAYERS_PER_PASS]
                seed = self.config.seed + self._passes
                fit = self._probe.stats(fit_pieces, group, max_rows=self.max_rows, seed=seed)
                check = fit if check_pieces is fit_pieces else self._probe.stats(
                    check_pieces, group, max_rows=self.max_rows, seed=seed + 1)
                self._passes += 1
                for n in group:
                    if n in fit and n in check:
                        self._grams[n] = LayerGram(self.consumers[n].role, shrunk_gram(fit[n].gram, fit[n].rows),
                                                   check[n].gram)
            self.seconds += time.perf_counter() - start
        return {n: self._grams[n] for n in names if n in self._grams}


def feedback_candidates(
    arrays: dict[str, np.ndarray],
    requests: dict[str, Request],
    grams: LayerGrams,
    config: CompressConfig,
    *,
    budget: float = FEEDBACK_BUDGET,
    log: Callable[[str], object] | None = None,
) -> Candidates:
    """name -> its error-fed scalar candidates at the requested steps (module docstring),
    for the weights (``arrays``: float [*shape]) a Conv / MatMul / Gemm reads directly,
    within ``budget`` work units (fit.cost.feedback_work; Candidates.work: what was spent)."""
    say = log or (lambda _msg: None)
    names = [n for n in requests if n in arrays and n in grams.consumers and requests[n].steps]
    names.sort(key=lambda n: (-arrays[n].size, n))  # the budget goes where the bytes are
    start = time.perf_counter()
    out = Candidates()
    for name in names:
        w, consumer = arrays[name], grams.consumers[name]
        spread = _channel_spread(w, axis_order(consumer.role, w.shape))  # [O] or None
        work = _feedback_work(w, consumer, requests[name].steps, spread is not None)
        if out.work + work > budget:
            out.skipped.append(name)
            continue
        found = grams.get([name])
        if name not in found:
            continue
        out.work += work
        try:
            out[name] = _feedback_tensor(name, w, found[name], requests[name].steps, config, spread)
        except ConfigError:  # a Gram that does not fit the weight's layout, or overflowing indices
            continue
    out.seconds = time.perf_counter() - start
    fitted = sum(len(v) for v in out.values())
    say(f"error feedback: {fitted} candidates for {len(out)} layers in {out.seconds:.1f} s ({out.work:.1f} work units)"
        + (f" ({len(out.skipped)} layers left to plain rounding: budget of {budget:.0f} work units)"
           if out.skipped else ""))
    return out


def _feedback_work(w: np.ndarray, consumer, steps: tuple[float, ...], per_channel: bool) -> float:
    """The predicted work (fit.cost.feedback_work) of _feedback_tensor on ``w`` at ``steps``
    (``consumer``: its activations.find_consumers entry, a conv's group count its last attr;
    ``per_channel``: the scalar_channel variants are tried too)."""
    order = axis_order(consumer.role, w.shape)
    kdim = run_length(w.shape, order)
    rows = max(1, w.size // max(1, kdim))
    groups = int(consumer.attrs[-1]) if consumer.role == "conv" and consumer.attrs else 1
    variants = 1 + per_channel
    return feedback_work(rows, kdim, groups, len(steps) * variants * (2 if RDO_LAMBDA > 0 else 1))


def _channel_spread(w: np.ndarray, order: tuple[int, ...]) -> np.ndarray | None:
    """The channels' RMS [O] when they spread by CHANNEL_SPREAD or more (per-channel steps
    are then tried too), else None (and for vectors)."""
    if len(w.shape) < 2:
        return None
    c_rms = channel_rms(w, order[0])  # [O]
    live = c_rms[c_rms > 0]
    if live.size and float(live.max()) >= CHANNEL_SPREAD * float(live.min()):
        return c_rms
    return None


def _feedback_tensor(name: str, w: np.ndarray, grams: LayerGram, steps: tuple[float, ...],
                     config: CompressConfig, spread: np.ndarray | None) -> list[Candidate]:
    """The error-fed candidates of one tensor: scalar at each step, and scalar_channel where
    the channels' RMS spread by CHANNEL_SPREAD or more (``spread``: _channel_spread's [O] or
    None; fed on grams.fit, judged on grams.check)."""
    role, gram = grams.role, grams.fit
    order = axis_order(role, w.shape)
    kdim = run_length(w.shape, order)
    gc = gram.shape[0]
    tshape = tuple(w.shape[a] for a in order)
    wt = np.transpose(np.asarray(w, dtype=np.float64), order).reshape(-1, kdim)  # [O, K]
    if gram.shape[1:] != (kdim, kdim) or wt.shape[0] % gc:
        raise ConfigError(f"{name}: its Gram {gram.shape} does not fit the rows {wt.shape}")
    seed = derive_seed(config.seed, name)
    dt = np.transpose(dither(seed, w.size).reshape(w.shape), order).reshape(-1, kdim)  # [O, K] float32
    rms = float(np.sqrt(np.mean(wt * wt)))
    if not (rms > 0 and np.isfinite(rms)):
        return []
    prepared = feedback.prepare(gram)  # the column order and inverse factor: one per layer
    cols = feedback.columns(wt, dt, prepared[0])  # the weights and dither in that order: one per layer
    rel = None if spread is None else np.maximum(spread / rms, MIN_REL)  # [O] step factors
    back = np.argsort(order)

    def candidates(method: str, label: str, step: float, row_steps: np.ndarray, cfg: object,
                   params: bytes) -> list[Candidate]:
        """The plain error-fed candidate, and its rate-distortion-optimised twin when RDO_LAMBDA > 0."""
        q0 = feedback.feedback_indices(wt, row_steps, dt, prepared=prepared, cols=cols)  # [O, K]
        out = [candidate(method, label, step, q0, cfg, params)]
        if RDO_LAMBDA > 0:
            q1 = feedback.feedback_indices(wt, row_steps, dt, prepared=prepared, lam=RDO_LAMBDA, first=q0, cols=cols)
            out.append(candidate(method, label + " rdo", step, q1, cfg, params))
        return out

    def candidate(method: str, label: str, step: float, q: np.ndarray, cfg: object, params: bytes) -> Candidate:
        q = np.transpose(q.reshape(tshape), back).reshape(-1)  # row-major [numel]
        codes = zigzag(q)
        top = int(codes.max()) if codes.size else 0
        width = width_for(top)
        codes = codes.astype(np.dtype(f"<u{width}"))  # compact: many candidates are kept
        quantized = from_encoded(w, method, Encoded(symbols=codes, symbol_width=width, step=step, seed=seed,
                                                    params=params))
        bits = symbol_entropy(codes) * codes.size + 8.0 * len(params)
        decoded = dequantize(quantized)
        power = effective_power(w, decoded, order, kdim, grams.check)
        return Candidate(method, label, cfg, quantized, bits / 8.0, power, step=step)

    cands: list[Candidate] = []
    for step in steps:
        step = float(np.float32(step))
        if not valid_step(step):
            continue
        try:
            cands += candidates("scalar", "scalar feedback", step, np.full(wt.shape[0], step),
                                StepConfig(step=step), b"")
            if rel is not None:
                with np.errstate(over="ignore", under="ignore"):
                    c_steps = (step * rel).astype(np.float32)  # [O]
                if all(valid_step(float(x)) for x in c_steps):
                    cands += candidates("scalar_channel", "scalar_channel feedback", step,
                                        c_steps.astype(np.float64), ChannelConfig(step=step, axis=int(order[0])),
                                        pack_params(int(order[0]), c_steps))
        except ConfigError:  # indices overflow at this step: not a candidate
            continue
    return cands


def pq_candidates(
    model: onnx.ModelProto,
    names: list[str],
    calib: CalibrationSet,
    config: CompressConfig,
    *,
    ks: tuple[int, ...] = PQ_KS,
    budget: float = PQ_BUDGET,
    grams: LayerGrams | None = None,
    log: Callable[[str], object] | None = None,
) -> Candidates:
    """name -> its PQ candidates (module docstring), for the weights among ``names`` that a
    Conv / MatMul / Gemm reads directly and that are large enough for k >= 16. ``grams``:
    the shared Gram cache (a new one on ``calib`` if None)."""
    from .pq_model import pq_layers

    say = log or (lambda _msg: None)
    wanted = set(names)
    grams = grams or LayerGrams(model, calib, config)
    layers = [(n, r) for n, r in pq_layers(model, PQConfig(k=min(ks)), config.min_elements)
              if n in wanted and n in grams.consumers]
    if not layers:
        return Candidates()
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name in dict(layers)}
    layers.sort(key=lambda nr: (-arrays[nr[0]].size, nr[0]))  # the budget goes where the bytes are
    start = time.perf_counter()
    out = Candidates()
    # the layers the budget admits, largest first (fit.cost.pq_work, predicted before fitting)
    chosen = []
    for name, role in layers:
        work = pq_work(arrays[name].size, ks)
        if out.work + work > budget:
            out.skipped.append(name)
            continue
        out.work += work
        chosen.append((name, role))
    for s in range(0, len(chosen), LAYERS_PER_PASS):
        group = chosen[s : s + LAYERS_PER_PASS]
        stats = grams.get([n for n, _ in group])
        for name, role in group:
            if name in stats:
                out[name] = _fit_layer(name, arrays[name], stats[name], ks, config)
    out.seconds = time.perf_counter() - start
    fitted = sum(len(v) for v in out.values())
    say(f"product quantization: {fitted} candidates for {len(out)} layers in {out.seconds:.1f} s ({out.work:.1f} work units)"
        + (f" ({len(out.skipped)} layers left to the step quantizers: budget of {budget:.0f} work units)"
           if out.skipped else ""))
    return out


def _fit_layer(name: str, w: np.ndarray, grams: LayerGram, ks: tuple[int, ...],
               config: CompressConfig) -> list[Candidate]:
    """The candidates of one layer, one per distinct k after pq_fit.choose_k (fitted on
    grams.fit, judged on grams.check)."""
    role, gram = grams.role, grams.fit
    cands: list[Candidate] = []
    seen: set[int] = set()
    for k in ks:
        pq_config = PQConfig(k=k, seed=config.seed, iterations=EM_ITERATIONS)
        try:
            fit, rep = pq_fit.fit_weights_traced(w, pq_config, role, gram, refine=PQ_REFINE, em_blocks=EM_BLOCKS)
        except ConfigError:  # e.g. centroids overflow float16
            continue
        k_real = int(fit.centroids.shape[0])
        if not rep.output_aware or k_real in seen or k_real < 2:
            continue
        seen.add(k_real)
        cfg = PQConfig(k=k_real, seed=config.seed, fit=fit)
        q = quantize(w, "pq", cfg, derive_seed(config.seed, name))
        decoded = dequantize(q).reshape(w.shape)
        blob = pack(q, config.coder).blob
        power = effective_power(w, decoded, fit.order, fit.d, grams.check)
        cands.append(Candidate("pq", f"pq d{fit.d} k{k_real}", cfg, q, len(blob), power,
                               exact_decode=decoded.astype(w.dtype)))
    return cands
