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

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import onnx

from .. import quantizers
from ..encoder import CompressConfig, CompressReport, compress_model
from ..errors import ConfigError
from ..quantizers.pq import PQConfig

TABLE_TARGETS = ("output", "weights")
PQ_TARGETS = ("weights", "output")


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
    calib_samples: int = 64
    pq: PQSpec | None = None
    tables: TablesSpec | None = None

    def __post_init__(self) -> None:
        q = quantizers.by_name(self.config.quantizer)
        if self.pq is not None and self.target is not None:
            raise ConfigError("product quantization takes no rate-allocation target")
        if self.target is not None and not q.has_step:
            raise ConfigError(f"rate allocation needs a quantizer with a step, not {q.name}")
        if self.tables is not None and self.pq is not None:
            raise ConfigError("codeword tables apply to the scalar and lattice quantizers, not to pq")
        if self.calib_samples < 1:
            raise ConfigError("calib_samples must be at least 1")

    @property
    def needs_calibration(self) -> bool:
        return self.target is not None or self.tables is not None or (self.pq is not None and self.calib is not None)


@dataclass
class CompressResult:
    model: onnx.ModelProto
    report: CompressReport
    allocation: object = None  # fit.allocate.Allocation
    pq: object = None  # fit.pq_model.ModelFit
    tables: object = None  # fit.tables.ModelTables
    calibration: object = None  # fit.calib.CalibrationSet
    warnings: list[str] = field(default_factory=list)


def compress(
    model: onnx.ModelProto,
    spec: CompressSpec | None = None,
    *,
    log: Callable[[str], object] | None = None,
    progress: Callable[[int], object] | None = None,
) -> CompressResult:
    """Plan every weight of ``model`` as ``spec`` says, encode each once; the model is not changed."""
    from ..fit import pq_model
    from ..fit.allocate import allocate
    from ..fit.calib import calibration_set
    from ..fit.tables import compress_refined

    spec = spec or CompressSpec()
    config = spec.config
    say = log or (lambda _msg: None)
    calib = None
    if spec.needs_calibration:
        calib = calibration_set(model, spec.calib, spec.calib_samples)
    result_warnings: list[str] = []

    if spec.pq is not None:
        if spec.pq.target == "output" and calib is None:
            raise ConfigError("--pq-target output needs calibration inputs (--calib)")
        fit = pq_model.fit_model(model, spec.pq.config, calib, refine=spec.pq.refine, rounds=spec.pq.rounds,
                                 min_elements=config.min_elements, threads=config.threads, target=spec.pq.target,
                                 progress=lambda name: say(f"fitted {name}"))
        result_warnings += fit.warnings
        compressed, report = pq_model.compress(model, fit, config, spec.pq.config)
        return CompressResult(compressed, report, pq=fit, calibration=calib, warnings=result_warnings)

    if spec.target is not None:
        alloc = allocate(model, spec.target, calib, config, samples=spec.calib_samples, log=say,
                         realize_model=spec.tables is None)
        if spec.tables is None:
            return CompressResult(alloc.model, alloc.report, allocation=alloc, calibration=calib)
        compressed, report, tables = compress_refined(model, alloc.config, calib, encoded=alloc.encoded,
                                                      target=spec.tables.target,
                                                      progress=lambda name: say(f"tables: {name}"))
        alloc.model, alloc.report, alloc.model_bytes = compressed, report, compressed.ByteSize()
        return CompressResult(compressed, report, allocation=alloc, tables=tables, calibration=calib,
                              warnings=tables.warnings)

    if spec.tables is not None:
        compressed, report, tables = compress_refined(model, config, calib, target=spec.tables.target,
                                                      progress=lambda name: say(f"tables: {name}"))
        return CompressResult(compressed, report, tables=tables, calibration=calib, warnings=tables.warnings)

    compressed, report = compress_model(model, config, progress=progress)
    return CompressResult(compressed, report)


def with_config(spec: CompressSpec, **changes) -> CompressSpec:
    """The spec with some fixed settings changed."""
    return replace(spec, config=replace(spec.config, **changes))
