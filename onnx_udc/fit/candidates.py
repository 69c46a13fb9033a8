"""Fitted candidates for the rate allocation: product quantization as one more choice per tensor.

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

Fitting stops at ``budget`` seconds (largest layers first, so the budget goes where the
bytes are); the layers left out keep the step quantizers only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..codec import dequantize, pack, quantize
from ..encoder import CompressConfig
from ..errors import ConfigError
from ..quantizers.pq import PQConfig, to_blocks
from . import pq as pq_fit
from .activations import ActivationProbe
from .calib import CalibrationSet

PQ_KS = (16, 64, 256)  # codebook sizes tried per layer (lowered for small layers: pq_fit.choose_k)
PQ_REFINE = 10  # conjugate-gradient iterations of the centroid fine-tuning
EM_BLOCKS = 1 << 14  # blocks the EM of one candidate sees at most (then every block is assigned once)
EM_ITERATIONS = 8
PQ_BUDGET = 60.0  # seconds of fitting, when the layers allow
LAYERS_PER_PASS = 8  # layers whose activations one calibration pass collects (bounds memory)


@dataclass
class Candidate:
    """One fitted coding of one tensor, for the allocation's table."""

    method: str  # the registered quantizer ("pq")
    label: str  # e.g. "pq d9 k64"
    config: object  # the quantizer's config (PQConfig with its fit): CompressConfig.quantizer_configs
    quantized: object  # codec.Quantized: what the encoder writes
    decoded: np.ndarray  # the exact decode [*shape], as the decoders produce it
    blob_bytes: int  # the coded blob (configured coder)
    power: float  # P_eff: the white-noise power per weight with the same layer-output error

    def bits(self, numel: int) -> float:
        return 8.0 * self.blob_bytes / max(1, numel)


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
    """name -> [Candidate], with the seconds the fitting took."""

    seconds: float = 0.0


def pq_candidates(
    model: onnx.ModelProto,
    names: list[str],
    calib: CalibrationSet,
    config: CompressConfig,
    *,
    ks: tuple[int, ...] = PQ_KS,
    budget: float = PQ_BUDGET,
    max_rows: int = 2048,
    log: Callable[[str], object] | None = None,
) -> Candidates:
    """name -> its PQ candidates (module docstring), for the weights among ``names`` that a
    Conv / MatMul / Gemm reads directly and that are large enough for k >= 16."""
    from .pq_model import pq_layers

    say = log or (lambda _msg: None)
    wanted = set(names)
    layers = [(n, r) for n, r in pq_layers(model, PQConfig(k=min(ks)), config.min_elements) if n in wanted]
    if not layers:
        return Candidates()
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer if i.name in dict(layers)}
    probe = ActivationProbe(model, [n for n, _ in layers], threads=config.threads)
    layers = [(n, r) for n, r in layers if n in probe.consumers]
    layers.sort(key=lambda nr: -arrays[nr[0]].size)  # the budget goes where the bytes are
    start = time.perf_counter()
    out = Candidates()
    skipped = 0
    for s in range(0, len(layers), LAYERS_PER_PASS):
        if time.perf_counter() - start > budget:
            skipped = len(layers) - s
            break
        group = layers[s : s + LAYERS_PER_PASS]
        stats = probe.stats(calib.batches, [n for n, _ in group], max_rows=max_rows, seed=config.seed + s)
        for name, role in group:
            if name not in stats or time.perf_counter() - start > budget:
                skipped += name in stats
                continue
            out[name] = _fit_layer(name, arrays[name], role, stats[name].gram, ks, config)
    out.seconds = time.perf_counter() - start
    fitted = sum(len(v) for v in out.values())
    say(f"product quantization: {fitted} candidates for {len(out)} layers in {time.perf_counter() - start:.1f} s"
        + (f" ({skipped} layers left to the step quantizers: fitting budget of {budget:.0f} s spent)" if skipped else ""))
    return out


def _fit_layer(name: str, w: np.ndarray, role: str, gram: np.ndarray, ks: tuple[int, ...],
               config: CompressConfig) -> list[Candidate]:
    """The candidates of one layer, one per distinct k after pq_fit.choose_k."""
    from ..format.dither import derive_seed

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
        power = effective_power(w, decoded, fit.order, fit.d, gram)
        cands.append(Candidate("pq", f"pq d{fit.d} k{k_real}", cfg, q, decoded.astype(w.dtype), len(blob), power))
    return cands
