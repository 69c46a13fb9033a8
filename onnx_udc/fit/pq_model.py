"""Product quantization of a whole model, fitted bottom-up on calibration activations.

    select (graph.select: weights to quantize) --> PQ layers: read by Conv / MatMul / Gemm
    for each layer, in graph order (chunks of ``chunk`` layers):
        activations.ActivationProbe.stats(calibration, overrides = already-fitted layers)
            --> Gram of the layer's input [gc, K, K]
        pq_fit.fit_weights_traced(w, config, role, gram, refine)  (EM + centroid fine-tuning)
        overrides[w] = decoded PQ weight  (the layers above see the compressed layer)
    --> ModelFit.fits: name -> PQFit  --compress()--> graph.compress_model with
        quantizer_configs {name: ("pq", PQConfig(fit=...))}; other weights: the scalar quantizer

Without calibration data every layer is fitted by plain k-means on its weights and
``ModelFit.warnings`` says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace

import numpy as np
import onnx
from onnx import numpy_helper

from ..encoder import CompressConfig, CompressReport, compress_model
from ..errors import ConfigError
from ..graph.layers import analyze, run_length
from ..graph.select import Action, select
from ..quantizers.pq import PQConfig, PQFit, PQParams, reconstruct
from . import pq as pq_fit
from . import tables as codeword_fit
from .activations import ActivationProbe
from .calib import CalibrationSet


@dataclass
class LayerFit:
    name: str
    role: str
    shape: tuple[int, ...]
    d: int
    k: int
    output_aware: bool
    em_first: float  # EM objective (output error, block-diagonal metric) at the start / end
    em_last: float
    refine_first: float  # full output error before / after the centroid fine-tuning (nan: none)
    refine_last: float
    seconds: float


@dataclass
class ModelFit:
    fits: dict[str, PQFit]
    layers: list[LayerFit]
    calibrated: bool
    samples: int
    seconds: float
    warnings: list[str] = field(default_factory=list)


_PQ_ROLES = ("conv", "matmul_b", "gemm_b", "gemm_b_transposed")


def _graph_order(model: onnx.ModelProto, names) -> list[str]:
    """``names`` in the order the main graph's nodes first read them."""
    seen: dict[str, None] = {}
    for node in model.graph.node:
        for name in node.input:
            if name in names and name not in seen:
                seen[name] = None
    return list(seen)


def pq_layers(model: onnx.ModelProto, config: PQConfig, min_elements: int = 1024) -> list[tuple[str, str]]:
    """(name, role) of the weights product quantization takes, in graph order: selected for
    quantization, read by a Conv / MatMul / Gemm, with at least 4 blocks per centroid slot
    for k >= 16 (smaller layers are left to the scalar quantizer: their codebook would cost
    more than it saves)."""
    layers = analyze(model)
    chosen = {c.name: c for c in select(model, min_elements) if c.action is Action.QUANTIZE and c.kind == "initializer"}
    out = []
    for name in _graph_order(model, chosen):
        cand, use = chosen[name], layers[name]
        role = use.role
        if role not in _PQ_ROLES or len(cand.shape) < 2:
            continue
        d = pq_fit.block_for(config, use.layer_type, run_length(cand.shape, use.axis_order))
        if pq_fit.choose_k(config, -(-cand.numel // d)) >= 16:
            out.append((name, role))
    return out


def _decoded(fit: PQFit, like: np.ndarray) -> np.ndarray:
    params = PQParams(order=fit.order, d=fit.d, centroids=fit.centroids)
    return reconstruct(params, fit.indices, like.shape).astype(like.dtype)


def fit_model(
    model: onnx.ModelProto,
    config: PQConfig | None = None,
    calib: CalibrationSet | None = None,
    *,
    refine: int = 20,
    rounds: int = 1,
    max_rows: int = 2048,
    chunk: int = 1,
    min_elements: int = 1024,
    threads: int | None = None,
    progress: Callable[[str], object] | None = None,
    only: Collection[str] | None = None,
    target: str = "weights",
) -> ModelFit:
    """Fit every PQ layer bottom-up (see the module docstring).

    refine: conjugate-gradient iterations of the centroid fine-tuning (0: none).
    rounds: alternations of full-output-error reassignment and fine-tuning (pq_fit).
    max_rows: activation rows sampled per batch and layer. chunk: layers whose activations
    are collected in one pass (1: exact bottom-up; larger: fewer passes, each layer then
    sees the compressed layers of earlier chunks only).
    only: fit just these weights with pq (the others stay with the graph pass's quantizer).
    target: "weights" minimises ||Xq (W - W_hat)||^2; "output" minimises ||Xq W_hat - Xf W||^2
    (Xf: the original model's activations on the same rows, codeword_fit.paired_grams), so
    each layer also makes up for the error of the pq layers below it."""
    if target not in codeword_fit.TARGETS:
        raise ConfigError(f"target must be one of {codeword_fit.TARGETS}, got {target!r}")
    config = config or PQConfig()
    start = time.perf_counter()
    arrays = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    layers = pq_layers(model, config, min_elements)
    if only is not None:
        layers = [(n, r) for n, r in layers if n in set(only)]
    result = ModelFit(fits={}, layers=[], calibrated=calib is not None, samples=calib.samples if calib else 0, seconds=0.0)
    probe = None
    if not layers:
        result.warnings.append(f"no Conv / MatMul / Gemm weight is large enough for pq with k={config.k} "
                               "(each needs 4 blocks per centroid): every weight uses the scalar quantizer")
        result.seconds = time.perf_counter() - start
        return result
    if calib is None:
        result.warnings.append("no calibration data: plain k-means on the weights (not output-aware)")
    else:
        if calib.synthetic:
            result.warnings.append("calibration inputs are synthesized, not in-domain: the output-aware fit sees noise")
        probe = ActivationProbe(model, [n for n, _ in layers], threads=threads)
        probe_f = ActivationProbe(model, [n for n, _ in layers], threads=threads) if target == "output" else None
        missing = [n for n, _ in layers if n not in probe.consumers]
        if missing:
            result.warnings.append(f"{len(missing)} layer(s) not read directly by their Conv/MatMul/Gemm: k-means: {missing[:5]}")
    overrides: dict[str, np.ndarray] = {}
    for s in range(0, len(layers), max(1, chunk)):
        group = layers[s : s + max(1, chunk)]
        stats = {}
        if probe is not None and probe_f is not None:
            stats = codeword_fit.paired_grams(probe, probe_f, calib.batches, [n for n, _ in group if n in probe.consumers],
                                              overrides, max_rows, seed=config.seed + s)
        elif probe is not None:
            stats = {k: (v.gram, None) for k, v in probe.stats(calib.batches, [n for n, _ in group], overrides,
                                                                max_rows=max_rows, seed=config.seed + s).items()}
        for name, role in group:
            t0 = time.perf_counter()
            w = arrays[name]
            gram, cross = stats.get(name, (None, None))
            goal = w if cross is None else _output_goal(w, role, gram, cross)
            fit, rep = pq_fit.fit_weights_traced(goal, config, role, gram, refine=refine if gram is not None else 0,
                                                 rounds=rounds)
            result.fits[name] = fit
            if probe is not None and name in probe.consumers:
                overrides[name] = _decoded(fit, w)
            obj = rep.trace.objective
            result.layers.append(LayerFit(
                name=name, role=role, shape=tuple(w.shape), d=rep.d, k=rep.k, output_aware=rep.output_aware,
                em_first=obj[0], em_last=obj[-1],
                refine_first=rep.refine[0] if rep.refine else float("nan"),
                refine_last=rep.refine[-1] if rep.refine else float("nan"),
                seconds=time.perf_counter() - t0,
            ))
            if progress:
                progress(name)
    result.seconds = time.perf_counter() - start
    return result


def _output_goal(w: np.ndarray, role: str, gram: np.ndarray, cross: np.ndarray) -> np.ndarray:
    """The weights whose Xq-output is the least-squares match of Xf W (codeword_fit.output_target),
    in w's shape [*shape]."""
    rows = codeword_fit._rows(tuple(w.shape), tuple(range(w.ndim)), role)
    goal = np.empty(w.size)
    goal[rows.tensor_of] = codeword_fit.output_target(rows.take(w), gram, cross).reshape(-1)
    return goal.reshape(w.shape)


def compress(
    model: onnx.ModelProto, fit: ModelFit, config: CompressConfig | None = None, pq_config: PQConfig | None = None
) -> tuple[onnx.ModelProto, CompressReport]:
    """The graph pass with the fitted layers coded by pq, every other weight as ``config`` says."""
    base = pq_config or PQConfig()
    chosen = {name: ("pq", replace(base, fit=f)) for name, f in fit.fits.items()}
    config = replace(config or CompressConfig(), quantizer_configs=chosen)
    return compress_model(model, config)
