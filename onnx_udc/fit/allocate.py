"""Sensitivity-aware rate allocation: one target, the best step for every tensor.

Dithered quantization adds to tensor l a noise independent of the weights, of known
power P_l(step) = quantizer.noise_power(step). At small noise the model's relative
output distortion is additive over tensors,

    D ~ sum_l a_l * P_l(step_l)                      (a_l: sensitivity of tensor l)

and tensor l costs R_l(step_l) bits (n_l weights times the entropy of its indices,
measured on the weights over a grid of steps). The allocation minimises
sum_l R_l + lambda * D tensor by tensor for a Lagrange multiplier lambda, with "keep
exact" (zero noise, raw cost) as one more choice per tensor, and searches lambda:

    calibration inputs --probe (noise of known power into one tensor at a time)--> a_l
    weights --quantizer at each grid step--> R_l(step)
    target --budget--> lambda* (bisection on the predicted size or distortion)
           --real measurements--> lambda (real compressed sizes, real metric on the
                                  calibration inputs with the exactly decoded weights)

Targets: a size (``ratio`` or ``size`` in bytes: maximise fidelity) or a fidelity floor
(``sqnr`` dB, ``agreement``, ``cosine``: minimise size).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from .. import quantizers
from ..codec import Quantized, dequantize, pack, quantize, symbol_entropy
from ..encoder import CompressConfig, CompressReport, EncodedTensor, encode_one, make_plan, pack_all, write
from ..errors import ConfigError
from ..format.dither import derive_seed
from ..graph.modelio import proto_size
from ..graph.select import Action
from ..quantizers.base import StepConfig
from . import fidelity
from .calib import CalibrationSet, batch_rows, calibration_set, first_samples, spread
from .cost import macs_per_sample
from .probe import WeightProbe

# switch_methods compares quantizers by coded size; with brotli it codes at this quality
# (not the configured 11): measured on 1M-2.4M-weight tensors (scalar, a2, d4, e8 at equal
# noise, steps 0.1 and 0.3 x RMS, dense / row-scaled / conv) it ranks them exactly as
# quality 11 does in every case, 25-100x faster. Only the winner is coded for the file.
SWITCH_BROTLI_QUALITY = 5


def _compare_size(q: Quantized, coder: str) -> int:
    """Coded payload bytes of ``q`` for comparing quantizers (ranks as ``coder`` does)."""
    if coder == "brotli":
        from ..coders.brotli_coder import BrotliCoder

        enc = q.encoded
        return len(BrotliCoder(SWITCH_BROTLI_QUALITY).encode(enc.symbols, enc.symbol_width, enc.period, row=q.row))
    return len(pack(q, coder).blob)

# Steps per tensor: step_rel = step / RMS from 2^-14 to 2^1 in quarter octaves. Coarser
# steps put more noise than signal into a tensor, outside any small-noise model.
GRID_REL = 2.0 ** (np.arange(-56, 5) / 4.0)  # [K]
RATE_SAMPLE = 1 << 17  # weights per tensor used to tabulate the rate
PROBE_SNR_DB = 30.0  # noise power injected to measure a sensitivity, relative to the tensor's
BLOB_OVERHEAD = 120  # bytes per compressed tensor besides its payload: header, names, node
MAX_MEASUREMENTS = 10
SENSITIVITY_MACS = 1.5e12  # multiply-accumulates of the sensitivity probing (~90 s on 2 cores at 18 GMAC/s)
SIZE_TARGETS = ("ratio", "size")
FEEDBACK_COARSER = 7  # grid steps (quarter octaves) coarser than the first predicted choice fitted with feedback


@dataclass(frozen=True)
class Target:
    """kind: ratio | size | sqnr | agreement | cosine."""

    kind: str
    value: float

    def __post_init__(self) -> None:
        if self.kind not in SIZE_TARGETS and self.kind not in fidelity.METRICS:
            raise ConfigError(f"unknown target {self.kind!r}; choose one of {SIZE_TARGETS + tuple(sorted(fidelity.METRICS))}")
        if not math.isfinite(self.value):
            raise ConfigError(f"target {self.kind} must be a finite number")
        if self.kind == "ratio" and self.value <= 1.0:
            raise ConfigError(f"--target-ratio must be above 1, got {self.value}")
        if self.kind == "size" and self.value <= 0:
            raise ConfigError(f"--target-size must be positive, got {self.value}")
        if self.kind not in SIZE_TARGETS:
            fidelity.get(self.kind).check_target(self.value)

    @property
    def is_size(self) -> bool:
        return self.kind in SIZE_TARGETS

    def describe(self) -> str:
        return {"ratio": f"ratio {self.value:g}x", "size": f"size {int(self.value)} B", "sqnr": f"output SQNR >= {self.value:g} dB",
                "output_sqnr": f"worst per-output SQNR >= {self.value:g} dB",
                "agreement": f"top-1 agreement >= {self.value:g}", "cosine": f"mean cosine >= {self.value:g}"
                }.get(self.kind, f"{self.kind} >= {self.value:g}")


@dataclass
class TensorPlan:
    name: str
    shape: tuple[int, ...]
    numel: int
    itemsize: int
    rms: float
    sensitivity: float  # a_l: relative output distortion per unit noise power
    step: float | None  # None: kept exact (lossless)
    bits: float  # predicted bits per weight
    distortion: float  # predicted share of D
    quantizer: str = "scalar"  # the method of the tensor ("exact" when kept exact)

    @property
    def step_rel(self) -> float | None:
        return None if self.step is None else self.step / self.rms


@dataclass
class Allocation:
    target: Target
    quantizer: str
    metric: str
    tensors: list[TensorPlan]
    lam: float
    predicted_distortion: float
    measured_distortion: float
    measured_metric: float  # counted on the calibration inputs
    smoothed_metric: float  # what the search compared with the target (see Metric.smooth)
    predicted_bytes: int
    model_bytes: int
    original_bytes: int
    calibration: str
    synthetic: bool
    samples: int
    seconds: dict[str, float] = field(default_factory=dict)
    measurements: int = 0
    model: onnx.ModelProto | None = None  # None when allocate(realize=False): see ``encoded``
    report: CompressReport | None = None
    encoded: list[EncodedTensor] | None = None  # the chosen tensors, quantized once, before coding
    config: CompressConfig | None = None  # the encoder settings of the choice (steps filled in)

    @property
    def ratio(self) -> float:
        return self.original_bytes / max(1, self.model_bytes)

    def steps(self) -> dict[str, float | None]:
        return {t.name: t.step for t in self.tensors}

    def to_dict(self) -> dict:
        return {
            "target": {"kind": self.target.kind, "value": self.target.value}, "quantizer": self.quantizer,
            "metric": self.metric, "lambda": self.lam, "predicted_distortion": self.predicted_distortion,
            "measured_distortion": self.measured_distortion, "measured_metric": self.measured_metric,
            "smoothed_metric": self.smoothed_metric,
            "predicted_bytes": self.predicted_bytes, "model_bytes": self.model_bytes, "original_bytes": self.original_bytes,
            "ratio": self.ratio, "calibration": self.calibration, "synthetic": self.synthetic, "samples": self.samples,
            "seconds": self.seconds, "measurements": self.measurements,
            "tensors": [{"name": t.name, "shape": list(t.shape), "quantizer": t.quantizer, "sensitivity": t.sensitivity,
                         "step": t.step, "step_rel": t.step_rel, "bits": t.bits, "distortion": t.distortion}
                        for t in self.tensors],
        }


# ---- rate and distortion tables -------------------------------------------------------


def rate_curve(quantizer: quantizers.Quantizer, w: np.ndarray, steps: np.ndarray, seed: int,
               order: tuple[int, ...] | None = None) -> np.ndarray:
    """steps [K] -> bits per weight [K]: order-0 entropy of the indices (plus the params'
    bytes for a quantizer that follows the axis order).

    w: float32 [numel] for a quantizer of single elements, measured on a strided sample of
    at most RATE_SAMPLE weights; or the tensor [*shape] with ``order`` for one whose symbols
    follow the layer's axis order (lattice vectors, per-channel steps): then the sample is
    whole rows of the transposed tensor (output channels), encoded as the encoder would.
    Where the sample has too few weights to estimate a large alphabet's entropy (above
    log2(sample) - 5 bits), the high-rate law R(step) = R(step0) + log2(step0 / step)
    takes over from the finest reliable step0.
    """
    if order is None:
        sample = w if w.size <= RATE_SAMPLE else w[:: w.size // RATE_SAMPLE][:RATE_SAMPLE]  # [S]
        identity = None
    else:
        t = np.transpose(w, order)  # [O, ...]
        per_row = max(1, t.size // max(t.shape[0], 1))
        keep = max(1, min(t.shape[0], RATE_SAMPLE // per_row))
        sample = t[spread(t.shape[0], keep)]
        identity = tuple(range(sample.ndim))
    reliable = math.log2(max(sample.size, 2)) - 5.0
    bits = np.empty(len(steps))
    anchor = None  # (step, bits) of the finest reliable measurement
    for k in range(len(steps) - 1, -1, -1):  # coarse to fine
        if anchor is not None and anchor[1] > reliable:
            bits[k] = anchor[1] + math.log2(anchor[0] / steps[k])
            continue
        config = StepConfig(step=float(steps[k]))
        if identity is not None:
            config = quantizer.tensor_config(config, identity)
        encoded = quantizer.encode(sample, config, seed)
        extra = 8.0 * len(encoded.params) if identity is not None else 0.0
        bits[k] = (symbol_entropy(encoded.symbols) * encoded.symbols.size + extra) / max(1, sample.size)
        anchor = (float(steps[k]), float(bits[k]))
    return bits


def measure_sensitivities(probe: WeightProbe, batches: list, reference: fidelity.Outputs, metric: fidelity.Metric,
                          names: list[str], seed: int = 0,
                          progress: Callable[[str], object] | None = None) -> dict[str, float]:
    """name -> a_l = D / P: relative output distortion per unit of uniform noise power
    injected into that tensor alone, at PROBE_SNR_DB below the tensor's power."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in names:
        w = probe.base[name].astype(np.float64)
        power = float(np.mean(w * w))
        p = power * 10.0 ** (-PROBE_SNR_DB / 10.0)
        half = math.sqrt(3.0 * p)  # uniform on [-half, half) has variance p
        noisy = w + rng.uniform(-half, half, size=w.shape)
        d = metric.distortion(reference, probe.run(batches, {name: noisy}))
        out[name] = d / p if p > 0 else 0.0
        if progress:
            progress(name)
    return out


@dataclass
class _Tables:
    names: list[str]
    numel: np.ndarray  # [L]
    itemsize: np.ndarray  # [L]
    rms: np.ndarray  # [L]
    sens: np.ndarray  # [L]
    steps: np.ndarray  # [L, K] absolute steps; column K is "exact"
    bits: np.ndarray  # [L, K+1+E] bits per weight; columns past K: fitted candidates (inf: none)
    noise: np.ndarray  # [L, K+1+E] predicted distortion a_l * P_l
    fitted: list = field(default_factory=list)  # [L][E]: fit.candidates.Candidate or None

    def candidate(self, l: int, k: int):
        """The fitted candidate of tensor l's column k; None for a step or "exact" column."""
        K = self.steps.shape[1]
        return self.fitted[l][int(k) - K - 1] if k > K else None

    def choose(self, lam: float) -> np.ndarray:
        """-> [L] option index minimising n*bits + lam*noise per tensor."""
        cost = self.numel[:, None] * self.bits + lam * self.noise
        return np.argmin(cost, axis=1)

    def totals(self, choice: np.ndarray) -> tuple[float, float]:
        """-> (payload bytes, predicted D) of a choice."""
        rows = np.arange(len(choice))
        return float(np.sum(self.numel * self.bits[rows, choice]) / 8.0), float(np.sum(self.noise[rows, choice]))


def _search(f: Callable[[float], bool], lo: float = -8.0, hi: float = 30.0) -> float:
    """Smallest log10 lambda in [lo, hi] with f true (f monotone false -> true)."""
    if f(10.0**lo):
        return 10.0**lo
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if f(10.0**mid):
            hi = mid
        else:
            lo = mid
    return 10.0**hi


# ---- the allocation -------------------------------------------------------------------


def allocate(
    model: onnx.ModelProto,
    target: Target,
    calib: str | Iterable[Mapping[str, object]] | CalibrationSet | None = None,
    config: CompressConfig | None = None,
    *,
    samples: int = 64,
    sensitivity_samples: int = 32,
    metric: str | None = None,
    log: Callable[[str], object] | None = None,
    realize_model: bool = True,
    alternatives: Sequence[str] = (),
    outputs: Sequence[str] | None = None,
    candidates: Callable[[list[str]], Mapping[str, Sequence]] | None = None,
    reuse: dict | None = None,
) -> Allocation:
    """Find every tensor's step for ``target``, compress with it, return the result.

    ``calib``: an .npz path, an iterable of feed dicts, a CalibrationSet, or None to
    synthesize inputs from the model's input specification (flagged ``synthetic``).
    ``metric``: fidelity metric measured and reported (default: the target's own for
    fidelity targets, output SQNR for size targets).
    ``realize_model=False`` (fidelity targets): stop before entropy coding; ``encoded``
    holds the chosen tensors for later stages and ``model_bytes`` is the prediction.
    ``alternatives``: other step quantizers a tensor may switch to after the allocation,
    at the step with the same noise power, when the coder really stores it in fewer bytes
    (the predicted distortion stays the same, the file never grows; switch_methods).
    ``outputs``: the model outputs the metric looks at (default: all, in the model's order).
    ``candidates`` (fidelity targets): {name: fit.candidates.Request} -> {name: fitted codings
    of that tensor} (fit.candidates.Candidate: product quantization, error-fed indices), asked
    for every tensor the predicted lambda quantizes, with its bits there and the grid steps
    from one finer to FEEDBACK_COARSER coarser; each coding is one more choice in its
    tensor's row of the table, at its coded size and its effective noise power.
    ``reuse``: a dict kept by the caller across allocations of one model on the same
    calibration set (the pipeline's retries): the sensitivities and rate tables, which do
    not depend on the target's value, are measured once.
    """
    config = config or CompressConfig()
    say = log or (lambda _msg: None)
    metric_obj = fidelity.get(metric or (target.kind if not target.is_size else "sqnr"))
    quantizer = quantizers.by_name(config.quantizer)
    if quantizer.lossless:
        raise ConfigError(f"rate allocation needs a lossy quantizer, not {config.quantizer}")
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    calib_set = calibration_set(model, calib, samples)
    base = make_plan(model, config)  # selection and layer uses, once (a copy of the model)
    chosen = [t for t in base.tensors if t.cand.action is Action.QUANTIZE and not config.kept_exact(t.name)]
    arrays = {t.name: t.array() for t in chosen}
    orders = {t.name: t.cand.use.axis_order for t in chosen}
    arrays = {n: a for n, a in arrays.items() if np.all(np.isfinite(a)) and np.any(a)}
    names = sorted(arrays)
    if not names:
        raise ConfigError("the model has no float weights to allocate a rate to")

    probe = WeightProbe(model, names, threads=config.threads, outputs=outputs)
    reference = probe.run(calib_set.batches)
    whole = calib_set.whole_feeds
    memo = reuse if reuse is not None else {}
    memo_key = (metric_obj.name, config.quantizer, config.seed, tuple(names))
    sens_batches = first_samples(calib_set.batches, sensitivity_samples, whole)
    # Probing runs the model once per tensor: keep that within SENSITIVITY_MACS multiply-
    # accumulates by probing on fewer samples (not fewer than 4) for costly models; counted
    # from the graph (fit.cost), never timed, so that the same command probes the same samples.
    if sens_batches and ("sens", memo_key) not in memo:
        macs = macs_per_sample(model, sens_batches[0])
        while (_samples(sens_batches) * macs * len(names) > SENSITIVITY_MACS and _samples(sens_batches) > 4
               and not (whole and len(sens_batches) <= 1)):
            sens_batches = _halve(sens_batches, whole)
    seconds["setup"] = time.perf_counter() - clock

    clock = time.perf_counter()
    if ("sens", memo_key) not in memo:
        sens_reference = probe.run(sens_batches)
        say(f"measuring the sensitivity of {len(names)} tensors on {_samples(sens_batches)} calibration samples")
        memo[("sens", memo_key)] = measure_sensitivities(probe, sens_batches, sens_reference, metric_obj, names,
                                                         seed=config.seed)
    sens = memo[("sens", memo_key)]
    seconds["sensitivity"] = time.perf_counter() - clock

    clock = time.perf_counter()
    if ("tables", memo_key) not in memo:
        memo[("tables", memo_key)] = _tables(quantizer, arrays, sens, config, orders)
    tables = memo[("tables", memo_key)]
    seconds["rates"] = time.perf_counter() - clock
    d_star = None if target.is_size else metric_obj.budget(target.value, reference)  # the predicted D allowed
    if candidates is not None and d_star is not None:  # (their fitting time: the caller's)
        from .candidates import Request

        first = tables.choose(_search(lambda x: tables.totals(tables.choose(x))[1] <= d_star))
        K = tables.steps.shape[1]
        requests = {n: Request(float(tables.bits[l, first[l]]),
                               tuple(float(x) for x in tables.steps[l, max(0, first[l] - 1):first[l] + FEEDBACK_COARSER + 1]))
                    for l, n in enumerate(names) if first[l] < K}
        tables = _with_candidates(tables, candidates(requests) if requests else {})

    original_bytes = proto_size(model)
    fixed = original_bytes - int(np.sum(tables.numel * tables.itemsize)) + BLOB_OVERHEAD * len(names)

    # Each (tensor, step) is quantized once: its exact decode feeds the measurements, and the
    # quantized symbols of the final choice go to the encoder unchanged.
    cache: dict[tuple[str, int], tuple[Quantized, np.ndarray]] = {}
    cache_budget = 4 * sum(a.nbytes for a in arrays.values())
    cache_bytes = [0]

    def quantized(l: int, k: int) -> tuple[Quantized, np.ndarray]:
        """Column k < K of tensor l quantized, or its fitted candidate (k > K), with its decode."""
        name = names[l]
        key = (name, int(k))
        if key not in cache:
            if k > exact_col:
                cand = tables.candidate(l, k)
                q, value = cand.quantized, cand.decoded
            else:
                cfg = replace(config.scalar, step=float(tables.steps[l, k]), target_bpw=None)
                cfg = quantizer.tensor_config(cfg, orders[name])  # as CompressConfig.tensor_plan does
                q = quantize(arrays[name], config.quantizer, cfg, derive_seed(config.seed, name))
                value = dequantize(q)
            size = value.nbytes + q.symbols.nbytes
            if cache_bytes[0] + size > cache_budget:
                cache.clear()  # bounded memory: keep at most a few copies of the weights
                cache_bytes[0] = 0
            cache[key] = (q, value)
            cache_bytes[0] += size
        return cache[key]

    exact_col = tables.steps.shape[1]

    def decoded(l: int, k: int) -> np.ndarray:
        if k == exact_col:
            return arrays[names[l]]
        if k > exact_col:
            return quantized(l, int(k))[1]
        return switched[names[l]][3] if names[l] in switched else quantized(l, int(k))[1]

    measured: dict[tuple, tuple[float, float, float]] = {}

    def measure(choice: np.ndarray) -> tuple[float, float, float]:
        """-> (metric, D, smoothed metric) of the really quantized weights on the calibration inputs."""
        key = tuple(int(c) for c in choice) + tuple(sorted((n, v[0]) for n, v in switched.items()))
        if key not in measured:
            overrides = {names[l]: decoded(l, int(k)) for l, k in enumerate(choice) if k != tables.steps.shape[1]}
            outputs = probe.run(calib_set.batches, overrides)
            measured[key] = (metric_obj.measure(reference, outputs), metric_obj.distortion(reference, outputs),
                             metric_obj.smooth(reference, outputs))
        return measured[key]

    # (name, grid index) or (name, quantizer, step) -> EncodeResult; kept in ``reuse`` for the next attempt
    packed_cache: dict[tuple, object] = memo.setdefault(("packed", memo_key, config.coder), {})

    switched: dict[str, tuple[str, float, Quantized, np.ndarray]] = {}  # name -> (quantizer, step, Quantized, decode)

    compare_cache: dict[tuple, int] = memo.setdefault(("compare", memo_key, config.coder), {})

    def switch_methods(choice: np.ndarray) -> None:
        """Each quantized tensor may move to an alternative quantizer at the step with the
        same noise power, when the coder stores it in fewer bytes (same predicted D),
        compared with _compare_size (brotli at SWITCH_BROTLI_QUALITY); realize codes the
        chosen blobs with the configured coder."""
        switched.clear()
        base = quantizers.by_name(config.quantizer)
        for l, k in enumerate(choice):
            if k >= exact_col:  # exact, or a fitted candidate (no step to switch at)
                continue
            name, step = names[l], float(tables.steps[l, k])
            base_key = (name, int(k))
            if base_key not in compare_cache:
                compare_cache[base_key] = _compare_size(quantized(l, int(k))[0], config.coder)
            best = compare_cache[base_key]
            for alt in alternatives:
                qa = quantizers.by_name(alt)
                alt_step = float(np.float32(math.sqrt(base.noise_power(step) / qa.noise_power(1.0))))
                cfg = qa.tensor_config(replace(config.scalar, step=alt_step, target_bpw=None), orders[name])
                try:
                    q = quantize(arrays[name], alt, cfg, derive_seed(config.seed, name))
                except ConfigError:
                    continue  # e.g. indices overflow at that step: not a candidate
                size = compare_cache.get((name, alt, alt_step))
                if size is None:
                    size = compare_cache[(name, alt, alt_step)] = _compare_size(q, config.coder)
                if size < best:
                    best = size
                    switched[name] = (alt, alt_step, q, dequantize(q))

    def encode_choice(choice: np.ndarray):
        """The encoder's plan for a choice, each tensor quantized once (from the cache)."""
        steps = {names[l]: (None if k == exact_col else float(tables.steps[l, k]))
                 for l, k in enumerate(choice) if k <= exact_col}
        others = {names[l]: (c.method, c.config) for l, k in enumerate(choice) if (c := tables.candidate(l, k))}
        for name, (alt, alt_step, _, _) in switched.items():
            steps[name] = alt_step
            others[name] = (alt, replace(config.scalar, step=alt_step, target_bpw=None))
        cfg = replace(config, steps=steps, quantizer_configs={**(config.quantizer_configs or {}), **others} or None)
        plan = make_plan(model, cfg)
        index = {n: l for l, n in enumerate(names)}
        encoded = []
        keys = []
        for t in plan.tensors:
            l = index.get(t.name)
            if l is not None and choice[l] > exact_col and not t.plan.exact:
                cand = tables.candidate(l, choice[l])
                encoded.append(encode_one(t, quantized=cand.quantized, decoded=cand.decoded))
                keys.append((t.name, cand.label))
            elif t.name in switched and not t.plan.exact:
                encoded.append(encode_one(t, quantized=switched[t.name][2], decoded=switched[t.name][3]))
                keys.append((t.name, switched[t.name][0], switched[t.name][1]))
            elif l is not None and not t.plan.exact:
                q, value = quantized(l, int(choice[l]))
                encoded.append(encode_one(t, quantized=q, decoded=value))
                keys.append((t.name, int(choice[l])))
            else:
                encoded.append(encode_one(t))
                keys.append((t.name, -1))
        return cfg, plan, encoded, keys

    def realize(choice: np.ndarray) -> tuple[onnx.ModelProto, CompressReport, list, CompressConfig]:
        cfg, plan, encoded, keys = encode_choice(choice)
        todo = [i for i, key in enumerate(keys) if key not in packed_cache]
        for i, result in zip(todo, pack_all(plan, [encoded[i] for i in todo])):
            packed_cache[keys[i]] = result
        model_out, report = write(plan, encoded, [packed_cache[key] for key in keys])
        return model_out, report, encoded, cfg

    clock = time.perf_counter()
    if target.is_size:
        goal = target.value if target.kind == "size" else original_bytes / target.value
        budget = goal - fixed
        final = None
        for _ in range(8):  # the real coded size corrects the predicted one
            lam = _search(lambda x: tables.totals(tables.choose(x))[0] > budget) if budget > 0 else 1e-8
            lam = lam / 1.0001  # just below the first lambda that overspends: the largest that fits
            choice = tables.choose(lam)
            model_out, report, encoded, final_cfg = realize(choice)
            real = proto_size(model_out)
            say(f"lambda {lam:.3g}: predicted {fixed + tables.totals(choice)[0]:,.0f} B, real {real:,} B (target {goal:,.0f})")
            if real <= goal and (final is None or real > final[2]):
                final = (lam, choice, real, model_out, report, encoded, final_cfg)
            if real <= goal and real >= 0.985 * goal:
                break
            budget *= goal / real
        if final is None:
            raise ConfigError(f"cannot reach {target.describe()}: the smallest model found has {real:,} bytes")
        lam, choice, real, model_out, report, encoded, final_cfg = final
        if alternatives:
            switch_methods(choice)
            if switched:
                model_out, report, encoded, final_cfg = realize(choice)
                real = proto_size(model_out)
        metric_value, d_meas, smoothed = measure(choice)
    else:
        from .check import Verification

        def meets(counted: float, value: float) -> bool:
            """The fit samples' rule of the held-out check (check.Verification.passed): the value
            (agreement: the margin model's) meets the target and a count is consistent with it."""
            return Verification(metric_obj.name, target.value, value, calib_set.samples, calib_set.synthetic,
                                counted=counted).passed

        lam = _search(lambda x: tables.totals(tables.choose(x))[1] <= d_star)
        say(f"predicted budget D = {d_star:.3g} ({-10 * math.log10(max(d_star, 1e-300)):.1f} dB): lambda {lam:.3g}")
        lo_fail = hi_pass = None
        best = None
        for _ in range(MAX_MEASUREMENTS):
            choice = tables.choose(lam)
            raw, d, value = measure(choice)
            ok = meets(raw, value)
            if not ok and value >= target.value:  # the count is significantly below: it speaks
                value = min(value, raw)
            size = tables.totals(choice)[0]
            say(f"lambda {lam:.3g}: predicted {fixed + size:,.0f} B, D {tables.totals(choice)[1]:.3g} predicted / {d:.3g} "
                f"measured, {metric_obj.name} {metric_obj.format(value)} {'ok' if ok else 'below target'}")
            if ok:
                hi_pass = lam if hi_pass is None else min(hi_pass, lam)
                if best is None or size < best[1]:
                    best = (lam, size, choice)
            else:
                lo_fail = lam if lo_fail is None else max(lo_fail, lam)
            # The noise falls about as 1/lambda: step by the measured over the allowed deficit.
            ratio = metric_obj.deficit(value) / metric_obj.deficit(target.value)
            if hi_pass is None:  # far below (the predicted budget was far off): larger strides
                lam *= float(np.clip(ratio * 1.05 if ratio <= 8.0 else ratio * ratio, 1.1, 1e4))
            elif lo_fail is None:
                lam *= float(np.clip(ratio * 1.05, 1.0 / 16.0, 1.0 / 1.1))
            elif hi_pass / lo_fail < 1.15:
                break
            else:
                lam = math.sqrt(hi_pass * lo_fail)
        if best is None:
            choice = np.full(len(names), exact_col)  # everything exact
            lam = math.inf
        else:
            lam, _, choice = best
        if alternatives:
            switch_methods(choice)
            if switched and not meets(measure(choice)[0], measure(choice)[2]):
                say(f"the methods switched at equal noise measure below the target: back to {config.quantizer}")
                switched.clear()
        metric_value, d_meas, smoothed = measure(choice)
        if realize_model:
            model_out, report, encoded, final_cfg = realize(choice)
            real = proto_size(model_out)
        else:  # the caller's stages run on ``encoded`` and it writes the model itself
            final_cfg, _, encoded, _ = encode_choice(choice)
            model_out = report = None
            real = int(fixed + tables.totals(choice)[0])
    seconds["search"] = time.perf_counter() - clock

    def method(l: int, n: str) -> str:
        if choice[l] == exact_col:
            return "exact"
        if choice[l] > exact_col:
            return tables.candidate(l, choice[l]).label
        return switched[n][0] if n in switched else config.quantizer

    plans = [
        TensorPlan(name=n, shape=tuple(arrays[n].shape), numel=int(tables.numel[l]), itemsize=int(tables.itemsize[l]),
                   rms=float(tables.rms[l]), sensitivity=float(tables.sens[l]),
                   step=_step_of(tables, l, int(choice[l])),
                   bits=float(tables.bits[l, choice[l]]), distortion=float(tables.noise[l, choice[l]]),
                   quantizer=method(l, n))
        for l, n in enumerate(names)
    ]
    payload, d_pred = tables.totals(choice)
    return Allocation(
        target=target, quantizer=config.quantizer, metric=metric_obj.name, tensors=plans, lam=float(lam),
        predicted_distortion=d_pred, measured_distortion=d_meas, measured_metric=metric_value, smoothed_metric=smoothed,
        predicted_bytes=int(fixed + payload), model_bytes=int(real), original_bytes=original_bytes,
        calibration=calib_set.source, synthetic=calib_set.synthetic, samples=calib_set.samples, seconds=seconds,
        measurements=len(measured), model=model_out, report=report, encoded=encoded, config=final_cfg,
    )


def _step_of(tables: _Tables, l: int, k: int) -> float | None:
    """The step of tensor l's column k: a grid step, a fitted candidate's own, or None."""
    K = tables.steps.shape[1]
    if k < K:
        return float(tables.steps[l, k])
    cand = tables.candidate(l, k)
    return None if cand is None else cand.step


def _samples(batches: list) -> int:
    return sum(batch_rows(b) for b in batches)


def _halve(batches: list, whole: bool = False) -> list:
    return batches[: max(1, len(batches) // 2)] if whole else first_samples(batches, _samples(batches) // 2)


def _with_candidates(tables: _Tables, candidates: Mapping[str, Sequence]) -> _Tables:
    """The tables with one more column per fitted candidate (fit.candidates.Candidate): its
    real coded bits per weight, and a_l times its effective noise power; inf bits where a
    tensor has fewer candidates."""
    L = len(tables.names)
    E = max((len(candidates.get(n, ())) for n in tables.names), default=0)
    bits = np.concatenate([tables.bits, np.full((L, E), np.inf)], axis=1)  # [L, K+1+E]
    noise = np.concatenate([tables.noise, np.zeros((L, E))], axis=1)
    fitted: list[list] = [[None] * E for _ in range(L)]
    K = tables.steps.shape[1]
    for l, n in enumerate(tables.names):
        for j, cand in enumerate(candidates.get(n, ())):
            bits[l, K + 1 + j] = cand.bits(int(tables.numel[l]))
            noise[l, K + 1 + j] = tables.sens[l] * cand.power
            fitted[l][j] = cand
    return replace(tables, bits=bits, noise=noise, fitted=fitted)


def _tables(quantizer: quantizers.Quantizer, arrays: dict[str, np.ndarray], sens: dict[str, float],
            config: CompressConfig, orders: dict[str, tuple[int, ...]]) -> _Tables:
    names = sorted(arrays)
    L, K = len(names), len(GRID_REL)
    numel = np.array([arrays[n].size for n in names], dtype=np.float64)
    itemsize = np.array([arrays[n].dtype.itemsize for n in names], dtype=np.float64)
    rms = np.array([math.sqrt(float(np.mean(arrays[n].astype(np.float64) ** 2))) for n in names])
    a = np.array([max(sens[n], 0.0) for n in names])
    floor = 1e-9 * float(a.max()) if a.max() > 0 else 1e-30
    a = np.maximum(a, floor)  # an insensitive tensor still must not go to infinite noise
    steps = rms[:, None] * GRID_REL[None, :]  # [L, K]
    bits = np.empty((L, K + 1))
    noise = np.empty((L, K + 1))
    for l, n in enumerate(names):
        steps[l] = np.array([float(np.float32(s)) for s in steps[l]])
        if quantizer.uses_axis_order:
            bits[l, :K] = rate_curve(quantizer, arrays[n].astype(np.float32), steps[l], derive_seed(config.seed, n),
                                     orders[n])
        else:
            bits[l, :K] = rate_curve(quantizer, arrays[n].reshape(-1).astype(np.float32), steps[l],
                                     derive_seed(config.seed, n))
        bits[l, K] = 8.0 * itemsize[l]  # exact: raw bits (the lossless coder may do a little better)
        noise[l, :K] = a[l] * np.array([quantizer.noise_power(float(s)) for s in steps[l]])
        noise[l, K] = 0.0
    return _Tables(names, numel, itemsize, rms, a, steps, bits, noise)
