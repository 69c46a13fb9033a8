"""One compression from a spec: the planners of ``onnx_udc.fit``, then the encode stage.

    CompressSpec --------------------------------------------------------------+
      config (fixed settings)   target (rate allocation)   pq (PQ fits)   tables (codeword tables)
    calibration inputs (fit.calib) -- read once, shared by every planner ------+
    plan:   fixed settings | fit.allocate (steps per tensor) | fit.pq_model (PQ fits)
    encode: encoder.make_plan -> quantize (each tensor once) -> [fit.tables on the Quantized]
            -> pack (coder, once) -> graph rewrite -> CompressResult

The CLI turns its options into a CompressSpec and calls ``compress``; so does the API.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from .. import quantizers
from ..encoder import CompressConfig, CompressReport, compress_model
from ..errors import ConfigError, ModelError
from ..fit.calib import HOLDOUT_FRACTION
from ..graph.modelio import proto_size
from ..quantizers.pq import PQConfig

TABLE_TARGETS = ("output", "weights")
FITTED_METHODS = ("pq", "feedback")  # methods a target's allocation may choose that are fitted (fit.candidates)
PQ_MAX_BITS = 3.0  # tensors above this rate at the first predicted lambda get no pq candidates
FEEDBACK_BUDGET = 90.0  # work units (fit.cost.feedback_work, ~1 s each) of error feedback over every attempt
PQ_TARGETS = ("weights", "output")


def auto_methods(target=None) -> tuple[str, ...]:
    """The methods ``--quantizer auto`` lets a target's allocation choose among, per tensor:
    every step quantizer, and (fidelity targets) product quantization and error-fed scalar
    indices (fit.candidates)."""
    methods = tuple(quantizers.step_quantizers())
    if target is not None and not target.is_size:
        methods += FITTED_METHODS
    return methods


@dataclass(frozen=True)
class PQSpec:
    """Product quantization fitted on calibration activations (fit.pq_model.fit_model)."""

    config: PQConfig = field(default_factory=PQConfig)
    refine: int = 20  # conjugate-gradient iterations of the centroid fine-tuning (0: none)
    rounds: int = 1  # alternations of full-error reassignment and fine-tuning
    target: str = "weights"  # "output": toward the original model's layer outputs

    def __post_init__(self) -> None:
        if self.refine < 0 or self.rounds < 1:
            raise ConfigError("pq refine must be >= 0 and rounds >= 1")
        if self.target not in PQ_TARGETS:
            raise ConfigError(f"pq target must be one of {PQ_TARGETS}, got {self.target!r}")


@dataclass(frozen=True)
class TablesSpec:
    """Data-driven codeword tables (fit.tables.refine_encoded), after the plan."""

    target: str = "output"  # "weights": toward the layer's own output

    def __post_init__(self) -> None:
        if self.target not in TABLE_TARGETS:
            raise ConfigError(f"tables target must be one of {TABLE_TARGETS}, got {self.target!r}")


@dataclass(frozen=True)
class CompressSpec:
    """Everything one compression needs: what the CLI's options become.

    config:  the fixed settings (quantizer, coder, step rule, seed, min_elements, threads)
    target:  fit.allocate.Target: the step of every tensor from measured sensitivities
    calib:   calibration inputs: .npz path, folder of images, iterable of feed dicts, a
             fit.calib.CalibrationSet, or None (synthesized from the input specification)
    pq:      PQSpec: product quantization (config.quantizer is then ignored for the fitted layers)
    tables:  TablesSpec: data-driven codeword tables for the scalar / lattice tensors
    """

    config: CompressConfig = field(default_factory=CompressConfig)
    target: object = None
    calib: object = None
    calib_samples: int | None = None  # None: default_calibration (from the model's MACs and the target, never timed)
    small_holdout: str = "margin"  # held-out samples too few to confirm the target: one of SMALL_HOLDOUT
    distill: str = "auto"  # end-to-end distillation of what the decoder reads (onnx_udc.finetune): DISTILL_MODES
    pq: PQSpec | None = None
    tables: TablesSpec | None = None
    methods: tuple[str, ...] | None = None  # quantizers a target's allocation chooses among, per tensor (+ "pq")
    outputs: tuple[str, ...] | None = None  # the model outputs fidelity is measured on (default: all)
    allow_miss: bool = False  # write a model that misses its fidelity target (else FidelityError)
    attempts: int = 3  # allocations tried, the internal target tightened after each held-out miss
    holdout: float = HOLDOUT_FRACTION  # of the calibration samples, kept for the final check

    def __post_init__(self) -> None:
        q = quantizers.by_name(self.config.quantizer)
        if self.pq is not None and self.target is not None and self.target.is_size:
            raise ConfigError("product quantization takes no size target (a fidelity target is checked)")
        if self.attempts < 1 or not 0.0 < self.holdout < 1.0:
            raise ConfigError("attempts must be >= 1 and holdout in (0, 1)")
        if self.target is not None and self.pq is None and not q.has_step:
            raise ConfigError(f"rate allocation needs a quantizer with a step, not {q.name}")
        if self.pq is not None and self.pq.target == "output" and self.calib is None:
            raise ConfigError("--pq-target output needs calibration inputs (--calib)")
        if self.tables is not None and self.pq is not None:
            raise ConfigError("codeword tables apply to the scalar and lattice quantizers, not to pq")
        for name in self.methods or ():
            if name not in FITTED_METHODS and not quantizers.by_name(name).has_step:
                raise ConfigError(f"methods must be quantizers with a step or one of {FITTED_METHODS}, not {name}")
        if self.methods and set(FITTED_METHODS) & set(self.methods) and (self.target is None or self.target.is_size):
            raise ConfigError("fitted methods (product quantization, error feedback) need a fidelity target")
        if self.distill not in DISTILL_MODES:
            raise ConfigError(f"distill must be one of {DISTILL_MODES}, got {self.distill!r}")
        if self.small_holdout not in SMALL_HOLDOUT:
            raise ConfigError(f"small_holdout must be one of {SMALL_HOLDOUT}, got {self.small_holdout!r}")
        if self.calib_samples is not None and self.calib_samples < 1:
            raise ConfigError("calib_samples must be at least 1")

    @property
    def needs_calibration(self) -> bool:
        return self.target is not None or self.tables is not None or (self.pq is not None and self.calib is not None)

    @property
    def checks_fidelity(self) -> bool:
        return self.target is not None and not self.target.is_size


@dataclass
class CompressResult:
    model: onnx.ModelProto
    report: CompressReport
    allocation: object = None  # fit.allocate.Allocation
    pq: object = None  # fit.pq_model.ModelFit
    tables: object = None  # fit.tables.ModelTables
    calibration: object = None  # fit.calib.CalibrationSet (the part the planners fitted on)
    warnings: list[str] = field(default_factory=list)
    verification: object = None  # fit.check.Verification: the fidelity on the held-out samples
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per stage
    distill: object = None  # finetune.DistillReport, when distillation ran


def compress(
    model: onnx.ModelProto,
    spec: CompressSpec | None = None,
    *,
    log: Callable[[str], object] | None = None,
    progress: Callable[[int], object] | None = None,
    inplace: bool = False,
    spill=None,
) -> CompressResult:
    """Plan every weight of ``model`` as ``spec`` says, encode each once; the model is not
    changed unless ``inplace`` (fixed settings then edit it instead of a copy: one model in
    memory, for callers done with the original, e.g. the command line).

    A fidelity target is checked at the end on held-out calibration samples that no planner
    saw (fit.calib.split_holdout), with the exactly decoded weights (fit.check). A miss is
    retried with a stricter internal target (rate allocation, ``spec.attempts`` times);
    a model that still misses raises FidelityError unless ``spec.allow_miss``.
    ``spill`` (modelio.spill_file): fixed settings write each blob there as it is coded.
    """
    spec = spec or CompressSpec()
    say = log or (lambda _msg: None)
    start = time.perf_counter()
    result = _compress(model, spec, say, progress, inplace, spill)
    if result.allocation is not None and not result.seconds:
        result.seconds = dict(result.allocation.seconds)
    result.seconds["total"] = time.perf_counter() - start
    return result


def _compress(model: onnx.ModelProto, spec: CompressSpec, say, progress, inplace: bool = False,
              spill=None) -> CompressResult:
    from ..fit.calib import calibration_set

    if not spec.needs_calibration:
        compressed, report = compress_model(model, spec.config, progress=progress, inplace=inplace, spill=spill)
        return CompressResult(compressed, report)
    held = None
    if spec.calib_samples is not None:
        calib = calibration_set(model, spec.calib, spec.calib_samples)
    else:
        calib, held = default_calibration(model, spec, say)
    try:
        return _compress_calibrated(model, spec, calib, say, held)
    except ModelError as exc:
        if calib.synthetic and "onnxruntime" in str(exc):
            raise ModelError(f"{exc} (on inputs synthesized from the model's input specification: pass real inputs "
                             "with --calib)") from None
        raise


def _compress_calibrated(model: onnx.ModelProto, spec: CompressSpec, calib, say, held: int | None = None
                         ) -> CompressResult:
    from ..fit.calib import split_holdout

    if not spec.checks_fidelity:
        return _plan_and_encode(model, spec, spec.target, calib, say, None, None)

    from ..errors import FidelityError
    from ..fit import check, fidelity

    metric = fidelity.get(spec.target.kind)
    if spec.distill == "on":  # asked for: its extra must be there before anything is fitted
        try:
            import torch  # noqa: F401
        except ImportError:
            from ..finetune import PIP_HINT

            raise ConfigError(f"--distill on needs torch: {PIP_HINT}") from None
    fit_set, holdout = split_holdout(calib, spec.holdout, model, held=held)
    goal = spec.target.value
    internal = goal
    small = _small_holdout(spec, metric, calib, holdout, say)
    outputs = list(spec.outputs) if spec.outputs else None
    reference = check.reference_outputs(model, holdout, spec.config.threads, outputs)
    if calib.synthetic or small:  # inputs that cannot vouch for the target: a conservative margin
        internal = metric.from_deficit(metric.deficit(goal) * SYNTHETIC_MARGIN)
    result = None
    check_seconds = 0.0
    fitted = candidates = _candidates(model, spec, fit_set, say)  # each tensor fitted once, for every attempt
    reuse: dict = {}  # sensitivities and rate tables, measured once for every attempt
    stages: dict[str, float] = {}  # wall time per stage, over every attempt
    previous = None  # the held-out value of the attempt before
    for attempt in range(1, spec.attempts + 1):
        target = replace(spec.target, value=internal)
        result = _plan_and_encode(model, spec, target, fit_set, say, candidates, reuse)
        for key, sec in {**(result.allocation.seconds if result.allocation else {}), **result.seconds}.items():
            stages[key] = stages.get(key, 0.0) + sec
        clock = time.perf_counter()
        value, counted = check.measure(result.model, holdout, reference, metric, spec.config.threads, outputs)
        check_seconds += time.perf_counter() - clock
        result.verification = check.Verification(metric.name, goal, value, holdout.samples, calib.synthetic,
                                                 attempt, internal, counted)
        say(f"held-out check: {result.verification.describe()}")
        if not result.verification.passed and spec.distill != "off":
            # trying harder, first step: distil what the decoder reads (same indices, same plan)
            result = _distilled(model, spec, result, fit_set, say)
            if result.distill is not None:
                stages["distillation"] = stages.get("distillation", 0.0) + result.distill.seconds
            if result.distill is not None and result.distill.kept:
                clock = time.perf_counter()
                value, counted = check.measure(result.model, holdout, reference, metric, spec.config.threads, outputs)
                check_seconds += time.perf_counter() - clock
                result.verification = check.Verification(metric.name, goal, value, holdout.samples, calib.synthetic,
                                                         attempt, internal, counted)
                say(f"held-out check after distillation: {result.verification.describe()}")
        if result.verification.passed or spec.pq is not None:  # PQ has no stricter setting to retry with
            break
        if attempt < spec.attempts:
            # a count significantly below the target speaks louder than the model's value
            shortfall = min(value, counted) if value >= goal else value
            internal = metric.tightened(internal, shortfall, goal)
            say(f"below the target: trying harder (internal target {metric.format(internal)})")
            if candidates is not None and previous is not None and not value > previous + MOVED * (goal - previous):
                # a stricter target left the held-out value where it was (it closed less than
                # MOVED of the gap): the fitted codings meet it on the samples they learned
                # from (inputs unlike the held-out ones), so the next attempts use the step
                # quantizers only. EfficientNet-Lite0's default: 0.98940 -> 0.98941 for a
                # 0.99 target while the fit samples' noise halved.
                candidates = None
                say("the held-out value did not move: the fitted methods are left out from here on")
        previous = value
    result.seconds = {**stages, "held-out check": check_seconds}
    if fitted is not None and fitted.fitted.seconds:
        result.seconds["pq candidates"] = fitted.fitted.seconds
    if fitted is not None and fitted.feedback_seconds:
        result.seconds["feedback candidates"] = fitted.feedback_seconds
    if small:
        result.warnings.append(small)
    elif result.verification.caveat():
        result.warnings.append(result.verification.caveat())
    if not result.verification.passed:
        line = (f"fidelity target missed: {result.verification.describe()} after {result.verification.attempts} "
                f"attempt(s)")
        if not spec.allow_miss:
            raise FidelityError(line, result.verification)
        result.warnings.append(line + " (written anyway: allow_miss)")
    return result


DISTILL_MODES = ("auto", "on", "off")  # auto: when torch is installed (pip install 'onnx-udc[finetune]')
DISTILL_STEPS = 200  # Adam steps (batch 32): docs/results/distill.md's setting
DISTILL_BATCH = 32
# Multiply-accumulates the default's distillation may cost (forward + backward ~ 3x the
# forward, fit.cost.macs_per_sample): the torch bridge ran the bundled ResNet-20's 200 steps
# (7.9e11) in 244 s on 2 cores; EfficientNet-Lite0's would be 7.7e12, over 40 minutes.
DISTILL_MACS = 8e11
MIN_DISTILL_STEPS = 25  # fewer steps than this within the budget: not run (--distill on runs it anyway)


def distill_steps(macs: float, mode: str = "auto") -> int:
    """Adam steps the default's distillation gets for a model of ``macs`` multiply-accumulates
    a sample: DISTILL_STEPS, fewer where they would cost more than DISTILL_MACS, 0 (not run)
    below MIN_DISTILL_STEPS; ``mode`` "on" (asked for) always DISTILL_STEPS. Predicted from
    the shapes, never timed: the same command runs the same steps on any machine."""
    if mode == "on":
        return DISTILL_STEPS
    per_step = 3.0 * DISTILL_BATCH * max(macs, 1.0)
    steps = min(DISTILL_STEPS, int(DISTILL_MACS // per_step))
    return steps if steps >= MIN_DISTILL_STEPS else 0


def _distilled(model: onnx.ModelProto, spec: CompressSpec, result: CompressResult, fit_set, say) -> CompressResult:
    """End-to-end distillation of what the decoder reads (pq centroids, codeword tables,
    steps: onnx_udc.finetune) toward the original model's outputs on the fit samples, indices
    frozen: the first way of trying harder after a held-out miss (before a stricter plan).
    It splits the fit samples itself and keeps the new blobs only when its own held-out part
    improves. On the bundled ResNet-20, run on a plan that already passed, it raised test
    agreement 0.9955 -> 0.9967 for 2.3 kB of tables and 244 s (docs/research/distill_ab.py),
    so it is not run on a model that passes. "auto": when torch is installed; an op its
    bridge lacks is a warning."""
    if spec.distill == "off":
        return result
    from ..finetune import DistillError, MissingTorchError, distill
    from ..fit.cost import macs_per_sample

    macs = macs_per_sample(model, fit_set.batches[0]) if fit_set.batches else 0.0
    steps = distill_steps(macs, spec.distill)
    if steps == 0:
        line = (f"distillation skipped: {macs / 1e6:,.0f} M multiply-accumulates a sample, "
                f"{MIN_DISTILL_STEPS} steps of {DISTILL_BATCH} would cost more than the default allows "
                f"({DISTILL_MACS:.0e}; --distill on runs {DISTILL_STEPS} steps anyway)")
        result.warnings.append(line)
        say(line)
        return result
    try:
        done = distill(model, result.model, fit_set, None, steps=steps, batch=DISTILL_BATCH,
                       threads=spec.config.threads)
    except MissingTorchError as exc:
        if spec.distill == "on":
            raise ConfigError(str(exc)) from None
        return result
    except DistillError as exc:
        result.warnings.append(exc.skipped)
        say(exc.skipped)
        return result
    say(done.report.describe())
    result.distill = done.report
    result.seconds["distillation"] = done.report.seconds
    if done.report.kept and done.model is not None:
        result.model = done.model
        result.report.compressed_model_bytes = proto_size(done.model)
    return result


AUTO_SAMPLES = 256  # calibration samples of the default set of a cheap model (a quarter held out)
MIN_AUTO_SAMPLES = 64  # ... never fewer by default
PASS_MACS = 5e10  # multiply-accumulates one pass over the default set may cost (~3 s on 2 cores at 18 GMAC/s)
CHECK_MACS = 3e11  # ... and one pass over the held-out samples grown to confirm an agreement target
SMALL_HOLDOUT = ("margin", "error", "accept")  # what a held-out set too small to confirm the target does


def default_samples(macs: float) -> int:
    """The default calibration sample count of a model costing ``macs`` multiply-accumulates
    per sample (fit.cost.macs_per_sample): AUTO_SAMPLES, fewer (never below MIN_AUTO_SAMPLES)
    where one pass over them would cost more than PASS_MACS. A function of the model and the
    inputs' shapes only: the same command reads the same samples on any machine."""
    return int(min(AUTO_SAMPLES, max(MIN_AUTO_SAMPLES, PASS_MACS // max(macs, 1.0))))


def default_calibration(model: onnx.ModelProto, spec: CompressSpec, say):
    """(calibration set, held-out samples or None for the plain quarter) when --calib-samples
    is not given. The fit part is the default count's three quarters (default_samples); for a
    target counted on the held-out samples (agreement) the held-out part grows from a quarter
    to the samples that can confirm it (Metric.samples_to_confirm: 299 for 0.99), when the
    data has them and a pass over them costs at most CHECK_MACS. Deterministic: no timing."""
    from ..fit import fidelity
    from ..fit.calib import calibration_set, cut
    from ..fit.cost import macs_per_sample

    need = 0
    if spec.checks_fidelity and spec.calib is not None:
        need = fidelity.get(spec.target.kind).samples_to_confirm(spec.target.value) or 0
    fit_max = AUTO_SAMPLES - AUTO_SAMPLES // 4
    calib = calibration_set(model, spec.calib, fit_max + max(AUTO_SAMPLES // 4, need))
    if not calib.batches or calib.synthetic:
        need = 0
    if not calib.batches:
        return calib, None
    macs = macs_per_sample(model, calib.batches[0])
    n = default_samples(macs)
    fit_n = n - n // 4
    held_want = max(n // 4, min(need, int(CHECK_MACS // macs)))
    available = calib.samples
    total = min(available, fit_n + held_want)
    if total < available:
        calib = cut(calib, total)
        total = calib.samples
    held = max(total // 4, total - fit_n)
    if total < available and n < AUTO_SAMPLES:
        say(f"calibration: {total} of {available} samples read ({macs / 1e6:,.0f} M multiply-accumulates a sample; "
            f"--calib-samples N reads N)")
    if held == total // 4:
        return calib, None  # the plain split: every 4th sample
    say(f"calibration: {total - held} samples to fit, {held} held out for the final check")
    return calib, held


def _small_holdout(spec: CompressSpec, metric, calib, holdout, say) -> str | None:
    """The policy for held-out samples too few to confirm the target (Metric.samples_to_confirm,
    real inputs only): None when they suffice; else ``spec.small_holdout`` says what happens:
    "margin" (default) plans with half the allowed deficit, as for synthesized inputs, and
    returns the warning; "error" raises ConfigError naming the samples needed; "accept"
    warns only (the verification's caveat)."""
    need = metric.samples_to_confirm(spec.target.value)
    if calib.synthetic or need is None or holdout.samples >= need or spec.small_holdout == "accept":
        return None
    line = (f"{holdout.samples} held-out samples cannot confirm {metric.name} >= {metric.format(spec.target.value)} "
            f"at 95% confidence: {need} are needed (calibration data of {calib.samples - holdout.samples + need} or "
            f"more samples; without --calib-samples the default holds them out)")
    if spec.small_holdout == "error":
        raise ConfigError(line + "; --small-calib margin plans with a safety margin instead, --small-calib accept "
                          "only warns")
    line += "; planned with a safety margin (half the allowed deficit; --small-calib accept: none)"
    say(line)
    return line


MOVED = 0.1  # of the gap to the target an attempt's held-out value must close to count as moved
SYNTHETIC_MARGIN = 0.5  # the deficit allowed on synthesized calibration inputs, relative to the target's


WHOLE_PQ_KS = (256, 128, 64)  # codebook sizes of the whole-model PQ plans compared with the allocation
WHOLE_PQ_MAX_WEIGHTS = 4_000_000  # pq-able weights above which the whole-model plans are not fitted (time)
WHOLE_PQ_MAX_BITS = 3.0  # the allocation's mean bits per weight on those layers above which they are not tried


def _whole_model_pq(model: onnx.ModelProto, spec: CompressSpec, target, calib, say, candidates,
                    result: CompressResult) -> CompressResult:
    """Product quantization of every layer it takes, fitted bottom-up toward the original
    model's layer outputs (fit.pq_model, target "output": each layer makes up for the error
    of those below it, which the allocation's per-tensor model cannot see), at each k of
    WHOLE_PQ_KS: the smallest plan whose fidelity on the calibration samples meets ``target``
    replaces the allocation's model when it is smaller. Tried when pq is among the methods of
    a fidelity target, the layers pq takes hold at most WHOLE_PQ_MAX_WEIGHTS weights (each k
    is one bottom-up fit of all of them, once for every attempt) and the allocation codes them
    at no more than WHOLE_PQ_MAX_BITS bits per weight (above, pq's 0.5-2 bits lose too much);
    the held-out check judges whichever is chosen."""
    if candidates is None or target is None or target.is_size or result.allocation is None:
        return result
    from ..fit.pq_model import pq_layers

    layers = {n for n, _ in pq_layers(model, PQConfig(k=16), spec.config.min_elements)
              if not spec.config.kept_exact(n)}
    planned = [t for t in result.allocation.tensors if t.name in layers]
    weights = sum(t.numel for t in planned)
    bits = sum(t.numel * (32.0 if t.step is None and not t.quantizer.startswith("pq") else t.bits)
               for t in planned) / max(1, weights)
    if not planned or weights > WHOLE_PQ_MAX_WEIGHTS or bits > WHOLE_PQ_MAX_BITS:
        return result  # too large to fit per k, or a rate whole-model pq cannot come near
    from ..fit import check, fidelity, pq_model

    metric = fidelity.get(target.kind)
    outputs = list(spec.outputs) if spec.outputs else None
    reference = candidates.reference(outputs)  # the same fit samples in every attempt
    best = result
    size = proto_size(result.model)
    clock = time.perf_counter()
    for k in WHOLE_PQ_KS:
        pq_config = PQConfig(k=k, seed=spec.config.seed)
        saved = sum(t.numel * t.bits / 8.0 for t in planned) - _pq_bytes(model, planned, pq_config)
        if saved <= 0:
            say(f"whole-model pq k{k}: its indices and codebooks alone would not be smaller than the allocation")
            continue
        fit = candidates.whole_fits.get(k)
        if fit is None:  # the fits do not depend on the target: once for every attempt
            fit = pq_model.fit_model(model, pq_config, calib, refine=20, min_elements=spec.config.min_elements,
                                     threads=spec.config.threads, target="output",
                                     only=sorted(layers))
            candidates.whole_fits[k] = fit
        compressed, report = pq_model.compress(model, fit, replace(spec.config, steps=_scalar_steps(result)),
                                               pq_config)
        value, counted = check.measure(compressed, calib, reference, metric, spec.config.threads, outputs)
        ok = check.Verification(metric.name, target.value, value, calib.samples, calib.synthetic,
                                counted=counted).passed
        say(f"whole-model pq k{k} toward the outputs: {proto_size(compressed):,} B, {metric.name} "
            f"{metric.format(value)} on the calibration samples {'ok' if ok else 'below target'}"
            f" (allocation: {size:,} B)")
        if ok and proto_size(compressed) < proto_size(best.model):
            best = CompressResult(compressed, report, pq=fit, calibration=calib, warnings=list(fit.warnings),
                                  seconds=dict(result.allocation.seconds))
        if not ok:
            break  # smaller codebooks only lose more
    best.seconds["whole-model pq"] = time.perf_counter() - clock
    return best


AUTO_TABLES = False  # the tables stage (_auto_tables): off, it did not pay (docs/research/tables_in_auto.md)
TABLES_LOOSEN_MAX = 2.0  # the coarser plan's allowed deficit, at most this many times the target's


def _auto_tables(model: onnx.ModelProto, spec: CompressSpec, target, calib, say, candidates, reuse,
                 result: CompressResult) -> CompressResult:
    """Codeword tables (fit.tables, toward the original layer outputs) as a measured stage of
    the default: fitted on the allocation's plan, they lower its output noise on the fit
    samples by a factor g (their gain); the allocation is then run again at a target allowing
    1/g times the deficit (at most TABLES_LOOSEN_MAX), the tables fitted on that coarser plan,
    and it replaces the plan when it meets ``target`` on the fit samples and is smaller. Run
    where --quantizer auto's fitted methods are (real calibration inputs, a fidelity target,
    no --tables / --pq) and the allocation's plan was kept (not whole-model pq); the held-out
    check judges whichever is kept."""
    alloc = result.allocation
    if (not AUTO_TABLES or spec.tables is not None or candidates is None or alloc is None or result.pq is not None
            or alloc.encoded is None or target is None or target.is_size):
        return result
    from ..fit import check, fidelity
    from ..fit.allocate import allocate
    from ..fit.tables import compress_refined

    clock = time.perf_counter()
    metric = fidelity.get(target.kind)
    outputs = list(spec.outputs) if spec.outputs else None
    reference = candidates.reference(outputs)
    threads = spec.config.threads
    d_plan = metric.distortion(reference, _outputs(result.model, calib, threads, outputs))
    tabled, _report, tables = compress_refined(model, alloc.config, calib, encoded=alloc.encoded, target="output")
    d_tabled = metric.distortion(reference, _outputs(tabled, calib, threads, outputs))
    gain = d_tabled / d_plan if d_plan > 0 else 1.0
    size = proto_size(result.model)
    best = result
    line = f"tables stage: output noise x{gain:.2f} on the plan"
    if tables.layers and gain < 0.95:
        loose = metric.from_deficit(metric.deficit(target.value) * min(1.0 / gain, TABLES_LOOSEN_MAX))
        coarse = allocate(model, replace(target, value=loose), calib, spec.config, samples=max(1, calib.samples),
                          log=None, realize_model=False,
                          alternatives=[m for m in spec.methods or () if m != spec.config.quantizer
                                        and m not in FITTED_METHODS],
                          outputs=outputs, candidates=candidates, reuse=reuse)
        compressed, report, coarse_tables = compress_refined(model, coarse.config, calib, encoded=coarse.encoded,
                                                             target="output")
        got = _outputs(compressed, calib, threads, outputs)
        value, counted = metric.smooth(reference, got), metric.measure(reference, got)
        ok = check.Verification(metric.name, target.value, value, calib.samples, calib.synthetic,
                                counted=counted).passed
        line += (f"; a plan for {metric.format(loose)} with tables: {proto_size(compressed):,} B, {metric.name} "
                 f"{metric.format(value)} on the fit samples ({'ok' if ok else 'below target'}; plan: {size:,} B)")
        if ok and proto_size(compressed) < size:
            coarse.model, coarse.report, coarse.model_bytes = compressed, report, proto_size(compressed)
            best = CompressResult(compressed, report, allocation=coarse, tables=coarse_tables, calibration=calib,
                                  warnings=list(coarse_tables.warnings), seconds=dict(result.seconds))
            line += ": kept"
        else:
            line += ": the plan kept"
    else:
        line += ": the plan kept"
    say(line)
    best.seconds["tables stage"] = best.seconds.get("tables stage", 0.0) + time.perf_counter() - clock
    return best


def _outputs(compressed: onnx.ModelProto, calib, threads, outputs):
    """``compressed``'s outputs on ``calib``, its weights decoded exactly (graph.decompress_model)."""
    from ..fit.probe import WeightProbe
    from ..graph.rewrite import decompress_model

    return WeightProbe(decompress_model(compressed), [], threads=threads, outputs=outputs).run(calib.batches)


def _pq_bytes(model: onnx.ModelProto, planned, config: PQConfig) -> float:
    """The bytes pq's indices (log2 k bits per block, before entropy coding) and float16
    codebooks would take for the ``planned`` tensors (fit.allocate.TensorPlan), at ``config``."""
    from ..fit import pq as pq_fit
    from ..graph.layers import analyze, run_length

    uses = analyze(model)
    total = 0.0
    for t in planned:
        use = uses[t.name]
        d = pq_fit.block_for(config, use.layer_type, run_length(t.shape, use.axis_order))
        blocks = -(-t.numel // d)
        k = pq_fit.choose_k(config, blocks)
        total += blocks * math.log2(max(k, 2)) / 8.0 + 2.0 * k * d
    return total


def _scalar_steps(result: CompressResult) -> dict:
    """The allocation's steps (None: exact) of the tensors it coded with a step quantizer: the
    layers whole-model pq does not take keep them."""
    return {t.name: t.step for t in result.allocation.tensors if not t.quantizer.startswith("pq")}


class _Fitted:
    """The fitted candidates of a target's allocation on the fit samples, each piece once for
    every attempt: called by fit.allocate with {name: fit.candidates.Request}, it returns the
    product quantization candidates of the low-rate tensors (Request.bits <= PQ_MAX_BITS:
    pq's 0.5-2 bits pay only there; ``[]``: tried, none) and the error-fed scalar candidates
    at the requested steps (each (name, step) fitted once), both on one Gram per layer
    (fit.candidates.LayerGrams). ``whole_fits``: k -> whole-model pq fit (_whole_model_pq);
    ``reference``: the original model's outputs on the fit samples."""

    def __init__(self, model: onnx.ModelProto, spec: CompressSpec, calib, say, pq: bool, feedback: bool):
        from ..fit.candidates import Candidates, LayerGrams

        self.model, self.spec, self.calib, self.say = model, spec, calib, say
        self.pq, self.feedback = pq, feedback
        self.grams = LayerGrams(model, calib, spec.config)
        self.fitted = Candidates()  # name -> pq candidates
        self.fed: dict[tuple[str, float], list] = {}  # (name, step) -> feedback candidates
        self.feedback_seconds = 0.0
        self.feedback_work = 0.0  # work units spent (fit.cost): what FEEDBACK_BUDGET counts
        self.whole_fits: dict = {}
        self._reference = None
        self._arrays: dict | None = None

    def __call__(self, requests: dict) -> dict:
        from ..fit.candidates import pq_candidates

        config = self.spec.config
        requests = {n: r for n, r in requests.items() if not config.kept_exact(n)}
        out: dict[str, list] = {}
        if self.pq:
            low = [n for n, r in requests.items() if r.bits <= PQ_MAX_BITS]
            todo = [n for n in low if n not in self.fitted]
            if todo:
                more = pq_candidates(self.model, todo, self.calib, config, grams=self.grams, log=self.say)
                self.fitted.update(more)
                self.fitted.seconds += more.seconds
                self.fitted.update({n: [] for n in todo if n not in more})
            out.update({n: list(self.fitted[n]) for n in low if self.fitted.get(n)})
        if self.feedback:
            self._feedback(requests)
            for n, r in requests.items():
                fed = [c for step in r.steps for c in self.fed.get((n, float(step)), ())]
                if fed:
                    out.setdefault(n, []).extend(fed)
        return out

    def _feedback(self, requests: dict) -> None:
        from ..fit.candidates import Request, feedback_candidates

        todo = {n: Request(r.bits, tuple(s for s in r.steps if (n, float(s)) not in self.fed))
                for n, r in requests.items() if n in self.grams.consumers}
        todo = {n: r for n, r in todo.items() if r.steps}
        if not todo:
            return
        if self._arrays is None:
            from onnx import numpy_helper

            self._arrays = {i.name: numpy_helper.to_array(i) for i in self.model.graph.initializer
                            if i.name in self.grams.consumers}
        left = max(0.0, FEEDBACK_BUDGET - self.feedback_work)
        more = feedback_candidates(self._arrays, todo, self.grams, self.spec.config, budget=left, log=self.say)
        self.feedback_seconds += more.seconds
        self.feedback_work += more.work
        for n, r in todo.items():
            if n in more.skipped:
                continue  # left out by the budget: not marked as tried
            for step in r.steps:
                self.fed[(n, float(step))] = [c for c in more.get(n, ()) if c.step == float(np.float32(step))]

    def reference(self, outputs: list[str] | None):
        from ..fit import check

        if self._reference is None:
            self._reference = check.reference_outputs(self.model, self.calib, self.spec.config.threads, outputs)
        return self._reference


def _candidates(model: onnx.ModelProto, spec: CompressSpec, calib, say) -> _Fitted | None:
    """The fitted candidates of a target's allocation when its methods include pq or
    feedback (feedback: with the scalar quantizer as the base), else None."""
    if spec.pq is not None or spec.target is None or spec.target.is_size or not spec.methods:
        return None
    pq = "pq" in spec.methods
    fed = "feedback" in spec.methods and spec.config.quantizer == "scalar"
    if not (pq or fed):
        return None
    if calib.synthetic:  # fitted to made-up activations, they would learn the noise: step quantizers only
        say("synthesized calibration inputs: no fitted methods (product quantization, error feedback)")
        return None
    try:
        return _Fitted(model, spec, calib, say, pq, fed)
    except ConfigError:  # no Conv / MatMul / Gemm reads a weight: nothing to fit
        return None


def _plan_and_encode(model: onnx.ModelProto, spec: CompressSpec, target, calib, say,
                     candidates, reuse: dict | None) -> CompressResult:
    """One planner (PQ, rate allocation, or fixed settings), the optional tables stage, the
    encode stage; the planners see ``calib`` only."""
    from ..fit import pq_model
    from ..fit.allocate import allocate
    from ..fit.tables import compress_refined

    config = spec.config
    if spec.pq is not None:
        fit = pq_model.fit_model(model, spec.pq.config, calib if spec.calib is not None else None,
                                 refine=spec.pq.refine, rounds=spec.pq.rounds, min_elements=config.min_elements,
                                 threads=config.threads, target=spec.pq.target,
                                 progress=lambda name: say(f"fitted {name}"))
        compressed, report = pq_model.compress(model, fit, config, spec.pq.config)
        return CompressResult(compressed, report, pq=fit, calibration=calib, warnings=list(fit.warnings))

    if target is not None:
        alloc = allocate(model, target, calib, config, samples=max(1, calib.samples), log=say,
                         realize_model=spec.tables is None,
                         alternatives=[m for m in spec.methods or () if m != config.quantizer
                                       and m not in FITTED_METHODS],
                         outputs=list(spec.outputs) if spec.outputs else None, candidates=candidates,
                         reuse=reuse)
        if spec.tables is None:
            result = CompressResult(alloc.model, alloc.report, allocation=alloc, calibration=calib)
            result = _whole_model_pq(model, spec, target, calib, say, candidates, result)
            return _auto_tables(model, spec, target, calib, say, candidates, reuse, result)
        compressed, report, tables = compress_refined(model, alloc.config, calib, encoded=alloc.encoded,
                                                      target=spec.tables.target,
                                                      progress=lambda name: say(f"tables: {name}"))
        alloc.model, alloc.report, alloc.model_bytes = compressed, report, proto_size(compressed)
        return CompressResult(compressed, report, allocation=alloc, tables=tables, calibration=calib,
                              warnings=list(tables.warnings))

    compressed, report, tables = compress_refined(model, config, calib, target=spec.tables.target,
                                                  progress=lambda name: say(f"tables: {name}"))
    return CompressResult(compressed, report, tables=tables, calibration=calib, warnings=list(tables.warnings))

