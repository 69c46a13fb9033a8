"""Side-by-side benchmark: onnx-udc against the tools users pick today, in one run.

For one model with real inputs and a fidelity metric (a zoo entry, ``models/zoo.py``):

    original fp32 ─┬─ anchors: fp16, ORT int8 dynamic, ORT 4-bit MatMulNBits, brotli of the file
                   └─ onnx-udc at a sweep of step sizes
    each variant ─► file bytes, ratio, bits/weight, fidelity, session creation and run
                    latency as ratios to the original (same process), peak load memory

Anchors are small registered builders; one that cannot apply to a model (4-bit on a
model without MatMul weights) says why instead of producing a row.

From the checkout root: ``python -m models.bench --pq --out docs/results`` (``make bench``)
rewrites docs/results/RESULTS.md, allocation_<model>.md and bench_<model>.json / .png.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from onnx_udc import CompressConfig, ScalarConfig, compress_model
from onnx_udc import InferenceSession as UdcSession
from onnx_udc.graph.modelio import save_model

ROOT = Path(__file__).resolve().parents[1]  # the checkout


class NotApplicable(Exception):
    """An anchor that does not apply to this model; the message says why."""


@dataclass
class Variant:
    name: str
    kind: str  # "original" | "anchor" | "udc" | "alloc"
    path: Path
    loaders: tuple[str, ...] = ("ort",)  # how to load: "ort", "brotli", "udc-custom-op", "udc-fast"
    setting: float | None = None  # step_rel of onnx-udc
    compressed_weights: int = 0
    compressed_bytes: int = 0
    note: str = ""
    allocation: dict | None = None  # Allocation.to_dict() of a rate-allocated variant
    # vector-quantizer section (--pq): how the file was made
    series: str = ""  # curve it belongs to, e.g. "E8 + data tables"
    compress_s: float | None = None
    compress_peak_mb: float | None = None
    calib_samples: int | None = None


@dataclass
class Row:
    model: str
    variant: str
    kind: str
    loader: str
    file_bytes: int
    ratio: float
    bits_per_weight: float  # whole file, per weight of the original model
    bits_per_compressed_weight: float | None
    fidelity: dict[str, float]
    create_ms: float
    create_ratio: float
    run_ms: float
    run_ratio: float
    peak_load_mb: float | None
    setting: float | None = None
    note: str = ""
    series: str = ""  # vector-quantizer section (--pq): curve, compression time, peak memory, calibration size
    compress_s: float | None = None
    compress_peak_mb: float | None = None
    calib_samples: int | None = None


@dataclass
class ModelResult:
    model: str
    title: str
    primary: str
    original_bytes: int
    weights: int
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # anchor -> reason
    target: dict | None = None  # the zoo's FidelityTarget: metric, threshold
    allocations: dict[str, dict] = field(default_factory=dict)  # variant -> Allocation.to_dict()
    defaults: dict[str, dict] = field(default_factory=dict)  # the default command: target, check or miss, time


# ---- anchors -------------------------------------------------------------------

AnchorBuilder = Callable[[Path, Path], Variant]
ANCHORS: dict[str, AnchorBuilder] = {}


def anchor(name: str) -> Callable[[AnchorBuilder], AnchorBuilder]:
    def wrap(fn: AnchorBuilder) -> AnchorBuilder:
        ANCHORS[name] = fn
        return fn

    return wrap


@anchor("fp16")
def _fp16(src: Path, out: Path) -> Variant:
    # onnxruntime's own converter: onnxconverter-common 1.16 leaves Cast(to=float) nodes
    # inconsistent on BERT-style models (the MiniLM export fails to load).
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    path = out / "fp16.onnx"
    save_model(model, path)
    return Variant("fp16", "anchor", path, note="onnxruntime.transformers.float16, keep_io_types")


@anchor("int8-dynamic")
def _int8(src: Path, out: Path) -> Variant:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = out / "int8_dynamic.onnx"
    quantize_dynamic(str(src), str(path), weight_type=QuantType.QInt8, per_channel=True)
    return Variant("ORT int8 dynamic", "anchor", path, note="quantize_dynamic, QInt8, per-channel")


@anchor("int4-matmulnbits")
def _int4(src: Path, out: Path) -> Variant:
    model = onnx.load(str(src))
    inits = {i.name for i in model.graph.initializer}
    if not any(n.op_type == "MatMul" and n.input[1] in inits for n in model.graph.node):
        ops = sorted({n.op_type for n in model.graph.node if any(i in inits for i in n.input[1:2])})
        where = f"weights feed {', '.join(ops[:4])}" if ops else "no weight initializers: weights are Constant nodes"
        raise NotApplicable(f"no MatMul with a constant initializer weight ({where}); MatMulNBits quantizes MatMul only")
    try:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
    except ImportError as exc:
        raise NotApplicable(f"onnxruntime's 4-bit quantizer cannot be imported ({exc.name} missing)") from None
    quant = MatMulNBitsQuantizer(model, block_size=32, is_symmetric=True)
    quant.process()
    path = out / "int4_matmulnbits.onnx"
    save_model(quant.model.model, path)
    return Variant("ORT 4-bit MatMulNBits", "anchor", path, note="block 32, symmetric, MatMul only")


@anchor("brotli-file")
def _brotli_file(src: Path, out: Path) -> Variant:
    import brotli

    path = out / "model.onnx.br"
    path.write_bytes(brotli.compress(src.read_bytes(), quality=11, lgwin=24))
    return Variant("brotli of the file", "anchor", path, loaders=("brotli",), note="lossless, quality 11")


# ---- loading and timing ------------------------------------------------------------

def session_options() -> ort.SessionOptions:
    """Default options, without spin-waiting so sessions measured in turn do not disturb each other."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def open_session(loader: str, path: Path) -> ort.InferenceSession:
    providers = ["CPUExecutionProvider"]
    if loader == "ort":
        return ort.InferenceSession(str(path), session_options(), providers=providers)
    if loader == "brotli":
        import brotli

        return ort.InferenceSession(brotli.decompress(path.read_bytes()), session_options(), providers=providers)
    if loader in ("udc-custom-op", "udc-fast"):
        return UdcSession(path, session_options(), fast=(loader == "udc-fast"))
    raise ValueError(f"unknown loader {loader!r}")


def _paired_medians(baseline: Callable[[], object], candidate: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median seconds of two callables timed alternately."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeat):
        for fn, bucket in ((baseline, times[0]), (candidate, times[1])):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def peak_load_mb(loader: str, path: Path) -> float | None:
    """Peak resident memory added by creating the session, in a fresh process."""
    # VmHWM (peak RSS of this process image; unlike ru_maxrss it does not inherit the
    # parent's size across fork/exec) after loading, minus VmRSS just before it, in KiB.
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[3]); import onnxruntime, models.bench as b;"
        "kib = lambda key: int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith(key)));"
        "base = kib('VmRSS:');"
        "s = b.open_session(sys.argv[1], __import__('pathlib').Path(sys.argv[2]));"
        "print(json.dumps((kib('VmHWM:') - base) / 1024))"
    )
    try:
        root = str(Path(__file__).resolve().parents[1])  # the checkout: models/ is importable from there
        done = subprocess.run([sys.executable, "-c", code, loader, str(path), root], capture_output=True, text=True,
                              timeout=600, check=True)
        return float(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def run_all(session: ort.InferenceSession, feeds: list[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    return [session.run(None, f) for f in feeds]


# ---- the benchmark ---------------------------------------------------------------

@dataclass(frozen=True)
class BenchConfig:
    steps: tuple[float, ...] = (0.02, 0.05, 0.1, 0.2, 0.4, 0.8)
    anchors: tuple[str, ...] = tuple(ANCHORS)
    repeat: int = 5  # session creations per variant and loader
    runs: int = 20  # timed runs per variant and loader
    limit: int | None = None  # evaluation samples
    memory: bool = True
    seed: int = 0
    allocate: bool = True  # rate-allocated variants at the zoo model's targets
    calib_samples: int = 256
    max_allocations: int | None = None  # first N allocation targets of each model
    pq: bool = False  # the vector-quantizer section: PQ and E8, each with and without fine-tuning
    default: bool = True  # the default command (target chosen from the outputs, --calib only)
    stated: bool = True  # also the default command with the zoo's stated target (FidelityTarget.stated)


@contextlib.contextmanager
def _quiet():
    """Silence the anchors' own warnings and log lines (fp16 truncation, pre-processing advice)."""
    import logging
    import warnings

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def count_weights(path: Path) -> int:
    """Elements of every initializer and Constant-node tensor of the model."""
    from onnx_udc.graph import weight_sources

    model = onnx.load(str(path), load_external_data=False)
    return sum(math.prod(src.tensor.dims) for src in weight_sources(model))


def benchmark_model(zoo_model, config: BenchConfig, workdir: Path, log: Callable[[str], None] = print) -> ModelResult:
    src = zoo_model.onnx_path()
    original_bytes = src.stat().st_size
    weights = count_weights(src)
    feeds = zoo_model.feeds(config.limit)
    result = ModelResult(zoo_model.name, zoo_model.title, zoo_model.primary, original_bytes, weights)
    if getattr(zoo_model, "target", None) is not None:
        result.target = {"metric": zoo_model.target.metric, "threshold": zoo_model.target.threshold}
    out = workdir / zoo_model.name
    out.mkdir(parents=True, exist_ok=True)

    variants = [Variant("original fp32", "original", src)]
    for name in config.anchors:
        try:
            with _quiet():
                variants.append(ANCHORS[name](src, out))
        except NotApplicable as exc:
            result.skipped[name] = str(exc)
            log(f"  {name}: not applicable: {exc}")
        except Exception as exc:  # the anchor tool itself fails on this model: that is a result too
            result.skipped[name] = f"the tool fails on this model: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            log(f"  {name}: fails: {exc}")
    for step in config.steps:
        log(f"  onnx-udc step-rel {step}: compressing")
        model, report = compress_model(onnx.load(str(src)), CompressConfig(scalar=ScalarConfig(step_rel=step), seed=config.seed),
                                       inplace=True)
        path = out / f"udc_s{step}.onnx"
        save_model(model, path)
        variants.append(Variant(f"onnx-udc s={step:g}", "udc", path, loaders=("udc-custom-op", "udc-fast"), setting=step,
                                compressed_weights=sum(math.prod(t.shape) for t in report.tensors),
                                compressed_bytes=sum(t.blob_bytes for t in report.tensors)))

    if config.default:
        variants += _default_variant(zoo_model, src, out, config, result, log)
    if config.allocate and getattr(zoo_model, "target", None) is not None:
        variants += _allocated_variants(zoo_model, src, out, config, result, log)
    if config.pq:
        variants += vq_variants(zoo_model, src, out, config, log)

    # The original is re-timed beside every variant (interleaved), so each ratio compares
    # two measurements taken under the same machine load.
    base = open_session("ort", src)
    reference = zoo_model.run(base, feeds)
    for variant in variants:
        for loader in variant.loaders:
            log(f"  {variant.name} [{loader}]")
            try:
                open_session(loader, variant.path)
            except Exception as exc:  # an anchor tool that produced a broken model
                result.skipped[f"{variant.name} [{loader}]"] = "fails to load in onnxruntime: " + " ".join(str(exc).split())[:300]
                log(f"    fails to load: {exc}")
                continue
            create = _paired_medians(lambda: open_session("ort", src), lambda: open_session(loader, variant.path),
                                     config.repeat)
            session = open_session(loader, variant.path)
            outputs = zoo_model.run(session, feeds)
            for _ in range(3):
                session.run(None, feeds[0])
            latency = _paired_medians(lambda: base.run(None, feeds[0]), lambda: session.run(None, feeds[0]), config.runs)
            session = None  # free it before the next variant
            size = variant.path.stat().st_size
            result.rows.append(Row(
                model=zoo_model.name, variant=variant.name, kind=variant.kind, loader=loader, file_bytes=size,
                ratio=original_bytes / size, bits_per_weight=8 * size / max(weights, 1),
                bits_per_compressed_weight=(8 * variant.compressed_bytes / variant.compressed_weights
                                            if variant.compressed_weights else None),
                fidelity=zoo_model.fidelity(reference, outputs),
                create_ms=1e3 * create[1], create_ratio=create[1] / create[0],
                run_ms=1e3 * latency[1], run_ratio=latency[1] / latency[0],
                peak_load_mb=peak_load_mb(loader, variant.path) if config.memory else None,
                setting=variant.setting, note=variant.note, series=variant.series, compress_s=variant.compress_s,
                compress_peak_mb=variant.compress_peak_mb, calib_samples=variant.calib_samples,
            ))
    return result


def _default_variant(zoo_model, src: Path, out: Path, config: BenchConfig, result: ModelResult,
                     log: Callable[[str], None]) -> list[Variant]:
    """What `onnx-udc compress M -o out --calib C` does with no other option: the target
    chosen from the model's outputs, checked on held-out calibration samples, the method
    chosen per tensor (pipeline.compress); and, where the zoo states one
    (FidelityTarget.stated), the same command with that target given (`--min-agreement 0.97`).
    Each runs in a child process for its time and peak memory. A miss is recorded, not
    written as a success."""
    from onnx_udc.fit.allocate import Target
    from onnx_udc.fit.fidelity import default_target

    proto = onnx.load(str(src))
    kind, value, why = default_target(proto)
    runs = [("onnx-udc default", Target(kind, value), why, "udc_default.onnx")]
    stated = getattr(getattr(zoo_model, "target", None), "stated", None)
    if stated is not None and config.stated:
        t = Target(*stated)
        runs.append(("onnx-udc auto, zoo target stated", t, "stated for the zoo target", "udc_stated.onnx"))
    calib = zoo_model.calibration(config.calib_samples)
    variants = []
    for name, target, reason, filename in runs:
        log(f"  {name}: {target.describe()} ({reason}) on {config.calib_samples} calibration samples")
        path = out / filename
        seconds, peak, info = _measured(lambda target=target: _run_default(proto, target, calib, config), path)
        entry = {"target": target.describe(), "why": reason, "seconds": seconds, "peak_mb": peak, **info}
        result.defaults[name] = entry
        if "missed" in info:
            log(f"    refused: {info['missed']}")
            continue
        variants.append(Variant(name, "default", path, loaders=("udc-fast",),
                                compressed_weights=info["weights"], compressed_bytes=info["bytes"],
                                note=f"{target.describe()}, held-out {info['held_out']}", compress_s=seconds,
                                compress_peak_mb=peak, calib_samples=config.calib_samples))
    return variants


def _run_default(proto, target, calib, config: BenchConfig) -> tuple[object, dict]:
    """The pipeline as the CLI's default runs it -> (model or None, info)."""
    from onnx_udc.errors import FidelityError
    from onnx_udc.pipeline import CompressSpec, compress
    from onnx_udc.pipeline.compress import auto_methods

    spec = CompressSpec(config=CompressConfig(seed=config.seed), target=target, calib=calib,
                        methods=auto_methods(target))  # the CLI's default sample rule on zoo calibration(N)
    try:
        res = compress(proto, spec)
    except FidelityError as exc:
        return None, {"missed": str(exc)}
    methods: dict[str, int] = {}
    for t in (res.allocation.tensors if res.allocation else []):
        key = t.quantizer.split(" ")[0]
        methods[key] = methods.get(key, 0) + 1
    if res.pq is not None:
        methods = {"pq (whole model, toward the outputs)": len(res.pq.fits)}
    return res.model, {
        "verification": res.verification.to_dict() if res.verification else None,
        "held_out": res.verification.describe() if res.verification else "",
        "weights": sum(math.prod(t.shape) for t in res.report.tensors),
        "bytes": sum(t.blob_bytes for t in res.report.tensors),
        "methods": methods, "stages": {k: round(v, 1) for k, v in res.seconds.items()},
    }


def _allocated_variants(zoo_model, src: Path, out: Path, config: BenchConfig, result: ModelResult,
                        log: Callable[[str], None]) -> list[Variant]:
    """One rate-allocated onnx-udc file per allocation target of the zoo model."""
    from onnx_udc.fit.allocate import Target, allocate

    spec = zoo_model.target
    result.target = {"metric": spec.metric, "threshold": spec.threshold}
    calib = zoo_model.calibration(config.calib_samples)
    variants = []
    for kind, value in spec.allocations[: config.max_allocations]:
        target = Target(kind, value)
        log(f"  onnx-udc allocation, {target.describe()} on {config.calib_samples} calibration samples")
        alloc = allocate(onnx.load(str(src)), target, calib=calib, config=CompressConfig(seed=config.seed),
                         samples=config.calib_samples)
        name = f"onnx-udc alloc {kind} {value:g}"
        path = out / f"udc_alloc_{kind}_{value:g}.onnx"
        save_model(alloc.model, path)
        info = alloc.to_dict()
        result.allocations[name] = info
        variants.append(Variant(name, "alloc", path, loaders=("udc-fast",),
                                compressed_weights=sum(math.prod(t.shape) for t in alloc.report.tensors),
                                compressed_bytes=sum(t.blob_bytes for t in alloc.report.tensors),
                                note=f"{target.describe()} on calibration inputs", allocation=info))
    return variants


# ---- reporting --------------------------------------------------------------------

def _fmt(x: float | None, spec: str) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return format(x, spec)


def markdown_table(result: ModelResult) -> str:
    metrics = list(result.rows[0].fidelity) if result.rows else []
    metrics = [result.primary] + [m for m in metrics if m != result.primary]
    head = ["variant", "load path", "bytes", "ratio", "bits/w (file)", "bits/w (compressed)", *metrics,
            "create", "run", "peak load MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result.rows:
        cells = [r.variant, r.loader, f"{r.file_bytes:,}", f"{r.ratio:.2f}x", f"{r.bits_per_weight:.2f}",
                 _fmt(r.bits_per_compressed_weight, ".2f")]
        cells += [_fmt(r.fidelity.get(m), ".4f") for m in metrics]
        cells += [f"{r.create_ratio:.2f}x", f"{r.run_ratio:.2f}x", _fmt(r.peak_load_mb, ".1f")]
        lines.append("| " + " | ".join(cells) + " |")
    for name, reason in result.skipped.items():
        lines.append(f"\n{name}: not applicable: {reason}")
    return "\n".join(lines)


def best_matches(result: ModelResult) -> list[str]:
    """For each lossy anchor, the smallest onnx-udc file at least as faithful, and the size ratio."""
    fast = [r for r in result.rows if r.kind in ("udc", "alloc") and r.loader == "udc-fast"]
    lines = []
    for a in (r for r in result.rows if r.kind == "anchor"):
        target = a.fidelity[result.primary]
        good = [r for r in fast if r.fidelity[result.primary] >= target]
        if a.variant == "brotli of the file":
            continue
        if not good:
            best = max(fast, key=lambda r: r.fidelity[result.primary], default=None)
            lines.append(f"- vs {a.variant} ({result.primary} {target:.4f}, {a.file_bytes:,} B): no onnx-udc setting "
                         f"in the sweep reaches it (best {best.fidelity[result.primary]:.4f} at {best.variant})"
                         if best else f"- vs {a.variant}: no onnx-udc rows")
            continue
        r = min(good, key=lambda r: r.file_bytes)
        lines.append(f"- vs {a.variant} ({result.primary} {target:.4f}, {a.file_bytes:,} B): {r.variant} "
                     f"({r.fidelity[result.primary]:.4f}, {r.file_bytes:,} B) is {a.file_bytes / r.file_bytes:.2f}x smaller")
    return lines


def allocation_summary(result: ModelResult) -> dict | None:
    """At the zoo target: the smallest global-step file and the smallest allocated file meeting it."""
    if not result.target:
        return None
    metric, threshold = result.target["metric"], result.target["threshold"]
    rows = [r for r in result.rows if r.loader == "udc-fast" and metric in r.fidelity]
    best = {}
    for kind in ("udc", "alloc"):
        good = [r for r in rows if r.kind == kind and r.fidelity[metric] >= threshold]
        best[kind] = min(good, key=lambda r: r.file_bytes) if good else None
    return {"metric": metric, "threshold": threshold, **best}


def default_section(result: ModelResult) -> list[str]:
    """The default command (`onnx-udc compress M -o out --calib C`) and, where the zoo states a
    target, the same command with it: target, held-out check, the zoo metric on the evaluation
    inputs, whether it meets the zoo target, the methods chosen, time and peak memory."""
    if not result.defaults:
        return []
    lines = ["The default command (`onnx-udc compress M -o out --calib C`: the target chosen from the outputs, "
             "the method per tensor) and, where the zoo states a target, the same command with it given:", "",
             "| command | target | ratio | held-out check | evaluation | zoo target | methods | compress s | peak MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    target = result.target or {}
    metric, threshold = target.get("metric"), target.get("threshold")
    for name, info in result.defaults.items():
        if "missed" in info:
            lines.append(f"| {name} | {info['target']} | refused (exit 6, nothing written) | {info['missed']} | | | | "
                         f"{info['seconds']:.0f} | {_fmt(info.get('peak_mb'), '.0f')} |")
            continue
        row = next((r for r in result.rows if r.kind == "default" and r.variant == name), None)
        if row is None:
            continue
        value = row.fidelity.get(metric) if metric else None
        meets = "" if value is None else f"{metric} {value:.4f} {'meets' if value >= threshold else 'MISSES'} >= {threshold:g}"
        methods = ", ".join(f"{k} {v}" for k, v in (info.get("methods") or {}).items())
        lines.append(f"| {name} | {info['target']} ({info['why']}) | {row.ratio:.2f}x | {info.get('held_out', '')} | "
                     f"{result.primary} {row.fidelity.get(result.primary, float('nan')):.4f} | {meets} | {methods} | "
                     f"{info['seconds']:.1f} | {_fmt(info.get('peak_mb'), '.0f')} |")
    return lines + [""]


def allocation_section(result: ModelResult) -> list[str]:
    summary = allocation_summary(result)
    if not summary or not result.allocations:
        return []
    metric, threshold = summary["metric"], summary["threshold"]
    lines = [f"Rate allocation vs one global step, at `{metric}` >= {threshold:g} on the evaluation inputs:", ""]
    g, a = summary["udc"], summary["alloc"]
    cell = lambda r: f"{r.variant}: {r.ratio:.2f}x, {r.fidelity[metric]:.4f}" if r else "none in the sweep reaches it"  # noqa: E731
    lines += [f"- one global step-rel: {cell(g)}", f"- rate allocation: {cell(a)}"]
    if g and a:
        lines.append(f"- allocation file is {g.file_bytes / a.file_bytes:.2f}x smaller")
    lines += ["", "| allocation target (calibration) | bytes | ratio | " + metric +
              " (evaluation) | D predicted | D measured | calibration metric | allocation time |", "|---|---|---|---|---|---|---|---|"]
    for r in result.rows:
        info = result.allocations.get(r.variant)
        if r.kind != "alloc" or info is None:
            continue
        db = lambda d: f"{-10 * math.log10(d):.2f} dB" if d and d > 0 else "inf"  # noqa: E731
        lines.append(f"| {r.note.replace(' on calibration inputs', '')} | {r.file_bytes:,} | {r.ratio:.2f}x | "
                     f"{r.fidelity.get(metric, float('nan')):.4f} | {db(info['predicted_distortion'])} | "
                     f"{db(info['measured_distortion'])} | {info['metric']} {info['measured_metric']:.4f} | "
                     f"{sum(info['seconds'].values()):.0f} s |")
    return lines + ["", "D is the relative output noise power on the calibration inputs, as SQNR; predicted by "
                    "the additive model sum a_l P_l, measured with the exactly decoded weights.", ""]


FULL_RUN = "python -m models.bench --pq"  # every model, every row: `make bench`


def relative(path: Path | str) -> str:
    """``path`` relative to the checkout root when inside it, as the report headers name it."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def run_command(argv: list[str]) -> str:
    """``python -m models.bench ARGV``, paths inside the checkout made relative to its root."""
    args = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if eq and Path(value).is_absolute():
            args.append(f"{flag}={relative(value)}")
        else:
            args.append(relative(arg) if Path(arg).is_absolute() else arg)
    return " ".join(["python -m models.bench", *args])


def allocation_plan_markdown(result: ModelResult, out: Path | None = None) -> str | None:
    """The per-tensor plan of the smallest allocated file that meets the zoo target."""
    summary = allocation_summary(result)
    row = summary and summary["alloc"]
    if not row:
        return None
    info = result.allocations[row.variant]
    where = relative(out) if out is not None else "docs/results"
    lines = [f"# Allocation chosen for {result.title}", "",
             f"Regenerate: `python -m models.bench --models {result.model} --out {where}` (from the checkout root; "
             "also rewrites the model's section of RESULTS.md).", "",
             f"Variant `{row.variant}`: {row.file_bytes:,} bytes ({row.ratio:.2f}x), {summary['metric']} "
             f"{row.fidelity[summary['metric']]:.4f} on the evaluation inputs. Calibration: {info['samples']} samples "
             f"({info['calibration']}); quantizer {info['quantizer']}; allocation time "
             f"{sum(info['seconds'].values()):.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in info['seconds'].items())}).", "",
             "| tensor | shape | sensitivity a_l | step / RMS | bits/w (predicted) | share of D |", "|---|---|---|---|---|---|"]
    total = max(info["predicted_distortion"], 1e-300)
    for t in info["tensors"]:
        step = "exact" if t["step"] is None else f"{t['step_rel']:.4f}"
        lines.append(f"| {t['name']} | {'x'.join(map(str, t['shape']))} | {t['sensitivity']:.3g} | {step} | "
                     f"{t['bits']:.2f} | {100 * t['distortion'] / total:.1f}% |")
    return "\n".join(lines) + "\n"


def plot(result: ModelResult, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    udc = sorted((r for r in result.rows if r.kind == "udc" and r.loader == "udc-fast"), key=lambda r: r.file_bytes)
    if udc:
        ax.plot([r.file_bytes / 1e6 for r in udc], [r.fidelity[result.primary] for r in udc], "o-", label="onnx-udc (step sweep)")
        for r in udc:
            ax.annotate(f"{r.setting:g}", (r.file_bytes / 1e6, r.fidelity[result.primary]), fontsize=7,
                        textcoords="offset points", xytext=(3, 3))
    alloc = sorted((r for r in result.rows if r.kind == "alloc"), key=lambda r: r.file_bytes)
    if alloc:
        ax.plot([r.file_bytes / 1e6 for r in alloc], [r.fidelity[result.primary] for r in alloc], "D--", color="tab:red",
                label="onnx-udc rate allocation")
    plot_vq(result, ax)
    if result.target and result.target["metric"] == result.primary:
        ax.axhline(result.target["threshold"], color="gray", lw=0.8, ls=":", label="benchmark target")
    markers = iter("s^vDP*X")
    for r in result.rows:
        if r.kind in ("anchor", "original"):
            ax.plot([r.file_bytes / 1e6], [r.fidelity[result.primary]], next(markers, "x"), label=r.variant, markersize=7)
    ax.set_xscale("log")
    from matplotlib.ticker import FormatStrFormatter

    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FormatStrFormatter("%g"))
    ax.set_xlabel("file size (MB, log scale)")
    ax.set_ylabel(result.primary)
    ax.set_title(result.title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def machine_summary() -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, onnxruntime {ort.__version__}, "
            f"onnx {onnx.__version__}")


def load_result(path: Path) -> ModelResult:
    data = json.loads(path.read_text())
    rows = [Row(**r) for r in data.pop("rows")]
    return ModelResult(**data, rows=rows)


def write_report(results: list[ModelResult], out: Path, command: str, config: BenchConfig) -> Path:
    """RESULTS.md for ``results`` plus, after them, any other model measured earlier into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    fresh = {r.model for r in results}
    earlier = [load_result(p) for p in sorted(out.glob("bench_*.json")) if p.stem[len("bench_"):] not in fresh]
    for res in results:
        (out / f"bench_{res.model}.json").write_text(json.dumps(asdict(res), indent=1, default=str) + "\n")
        plan = allocation_plan_markdown(res, out)
        if plan:
            (out / f"allocation_{res.model}.md").write_text(plan)
    results = list(results) + earlier
    full = f"{FULL_RUN} --out {relative(out)}"
    made = f"Produced on {time.strftime('%Y-%m-%d')}" + ("" if command == full else f" by `{command}`") + "."
    lines = ["# Benchmark results", "",
             f"Regenerate: `{full}` (from the checkout root; `make bench`, which installs the zoo first; hours). "
             + made, "",
             f"Machine: {machine_summary()}.", "",
             f"Session creation and run latency are medians ({config.repeat} creations, {config.runs} runs of the first "
             "input batch) as ratios to the original fp32 model, timed alternately with each variant in the same "
             "process (no thread spin-waiting, so sessions do not disturb each other); peak load memory is the "
             "resident memory a fresh process adds while creating the session. onnx-udc rows give both load paths: "
             "the registered custom op (portable) and the fast loader. Bits per weight (file) = file bytes x 8 / "
             "weights of the original model; bits per compressed weight counts only the blobs. Rate-allocated "
             "variants (`onnx-udc alloc ...`) were allocated on calibration inputs from each zoo entry's "
             "`calibration()`: other views of the photos for EfficientNet-Lite0 (never evaluated), the last "
             "samples of the evaluation set for the other models (for PP-OCR det, whose set has 32 crops, "
             "all of it).", ""]
    lines += summary_section(results)
    for res in results:
        lines += [f"## {res.title}", "", f"Original: {res.original_bytes:,} bytes, {res.weights:,} weights; "
                  f"headline metric `{res.primary}`.", ""]
        png = out / f"bench_{res.model}.png"
        if plot(res, png):
            lines += [f"![{res.title}]({png.name})", ""]
        lines += [markdown_table(res), "", "Smallest onnx-udc file at least as faithful as each anchor:", ""]
        lines += best_matches(res) + [""]
        lines += default_section(res)
        lines += allocation_section(res)
        lines += vq_section(res)
    report = out / "RESULTS.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def default_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="onnx-udc-bench-"))


# ---- vector quantizers with calibration (--pq): PQ and dithered E8, each without / with fine-tuning ----
#
#   E8, one global step-rel            --> "E8"                  (plain; no table)
#     + codeword_fit.refine_model      --> "E8 + data tables"    (indices, dither frozen; tables fitted on
#                                          the calibration activations toward the original layer outputs)
#   the same for the scalar quantizer    --> "scalar", "scalar + data tables"
#   PQ, output-aware EM (pq_model, fitted toward the original layer outputs) --> "PQ (EM)"
#     + centroid fine-tuning and 3 rounds of reassignment                   --> "PQ (EM + fine-tuning)"
# Every file is made in a forked child that reports its wall time and peak-RSS growth.

@dataclass(frozen=True)
class VQPlan:
    e8_steps: tuple[float, ...]  # step_rel of the E8 rows
    pq: tuple[tuple[str, dict, int], ...]  # (label, block sizes per layer type, k)
    calib_samples: int
    max_rows: int  # activation rows sampled per calibration batch and layer
    chunk: int = 4  # layers per calibration pass of the codeword tables
    scalar_steps: tuple[float, ...] = ()  # step_rel of scalar rows without / with data tables
    target: str = "output"  # fit target of the tables and of pq (codeword_fit.TARGETS)


VQ_PLANS = {
    "fmnist": VQPlan((0.8, 1.6, 2.4), tuple((f"d9 k{k}", {"conv3x3": 9, "conv1x1": 4, "conv": 8, "matmul": 4}, k)
                                            for k in (256, 128, 64)), 128, 1024,
                      scalar_steps=(0.8, 1.2, 1.6)),
    "efficientnet_lite0": VQPlan((0.02, 0.05), (("d4 k256", {"conv3x3": 3, "conv1x1": 4, "conv": 5, "matmul": 4}, 256),), 32, 256, 8,
                                scalar_steps=(0.02, 0.05)),
    # MiniLM: few rows per input width on short sentences; the "output" target overfits there (docs/research/pq2.md)
    "minilm": VQPlan((0.1,), (("d2 k256", {"matmul": 2}, 256),), 32, 512, 6, scalar_steps=(0.1,), target="weights"),
}
_DEFAULT_VQ = VQPlan((0.2, 0.8), (("d4 k256", {"conv3x3": 9, "conv1x1": 4, "conv": 8, "matmul": 4}, 256),), 64, 512)


def _vq_child(conn, job: Callable[[], tuple[object, dict]], path: Path) -> None:
    import resource

    from onnx_udc.graph.modelio import save_model

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    model, info = job()
    seconds = time.perf_counter() - t
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024.0
    if model is not None:  # None: nothing to write (a refused default)
        save_model(model, path)
    conn.send((seconds, peak, info))
    conn.close()


def _measured(job: Callable[[], tuple[object, dict]], path: Path) -> tuple[float, float, dict]:
    """Run job() -> (model, info) in a forked child; save the model to path; (seconds, peak MB, info)."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_vq_child, args=(child, job, path))
    proc.start()
    try:
        result = parent.recv()
    except EOFError:
        raise RuntimeError(f"the compression of {path.name} failed in its child process") from None
    proc.join()
    return result


def vq_variants(zoo_model, src: Path, out: Path, config: BenchConfig, log: Callable[[str], None]) -> list[Variant]:
    from onnx_udc.fit import pq_model
    from onnx_udc.fit import tables as codeword_fit
    from onnx_udc.fit.calib import CalibrationSet
    from onnx_udc.quantizers.lattice import LatticeConfig
    from onnx_udc.quantizers.pq import PQConfig

    plan = VQ_PLANS.get(zoo_model.name, _DEFAULT_VQ)
    calib = CalibrationSet(zoo_model.calibration(plan.calib_samples), False, "zoo")
    n = calib.samples
    variants = []

    def add(name, series, setting, path, job, calibrated):
        log(f"  {name}: compressing")
        seconds, peak, info = _measured(job, path)
        variants.append(Variant(name, "vq", path, loaders=("udc-fast",), setting=setting, series=series,
                                compressed_weights=info["weights"], compressed_bytes=info["bytes"], note=info["note"],
                                compress_s=seconds, compress_peak_mb=peak, calib_samples=n if calibrated else None))

    def sizes(report) -> dict:
        return {"weights": sum(math.prod(t.shape) for t in report.tensors), "bytes": sum(t.blob_bytes for t in report.tensors)}

    for quantizer, label, step in [("e8", "E8", s) for s in plan.e8_steps] + [("scalar", "scalar", s) for s in plan.scalar_steps]:
        cfg = CompressConfig(quantizer=quantizer, scalar=LatticeConfig(step_rel=step), seed=config.seed)

        def plain(cfg=cfg, label=label):
            model, report = compress_model(onnx.load(str(src)), cfg)
            return model, {**sizes(report), "note": f"{label}, one step-rel"}

        def tables(cfg=cfg):
            model, report, fit = codeword_fit.compress_refined(onnx.load(str(src)), cfg, calib, max_rows=plan.max_rows,
                                                               chunk=plan.chunk, target=plan.target)
            entries = sum(l.fit.entries for l in fit.layers)
            return model, {**sizes(report), "note": f"{entries} table entries, +{fit.extra_bytes:,} B"}

        add(f"{label} s={step:g}", label, step, out / f"vq_{quantizer}_s{step:g}.onnx", plain, False)
        add(f"{label} s={step:g} + data tables", f"{label} + data tables", step, out / f"vq_{quantizer}_s{step:g}_tables.onnx",
            tables, True)
    for label, blocks, k in plan.pq:
        pq_config = PQConfig(block=dict(blocks), k=k, iterations=10, seed=config.seed)
        for refine, rounds, series in ((0, 1, "PQ (EM)"), (20, 3, "PQ (EM + fine-tuning)")):
            def job(refine=refine, rounds=rounds, pq_config=pq_config):
                model = onnx.load(str(src))
                fit = pq_model.fit_model(model, pq_config, calib, refine=refine, rounds=rounds, max_rows=plan.max_rows,
                                         target=plan.target)
                compressed, report = pq_model.compress(model, fit, CompressConfig(seed=config.seed), pq_config)
                return compressed, {**sizes(report), "note": f"{len(fit.fits)} pq layers ({label}), others scalar"}

            add(f"PQ {label}" + (" + fine-tuning" if refine else ""), series, None,
                out / f"vq_pq_{label.replace(' ', '_')}_r{refine}.onnx", job, True)
    return variants


def vq_section(result: ModelResult) -> list[str]:
    rows = [r for r in result.rows if r.kind == "vq"]
    if not rows:
        return []
    p = result.primary
    lines = ["Vector quantizers with calibration (`--pq`): product quantization (PQ) without / with centroid "
             "fine-tuning, dithered E8 and scalar without / with codeword tables fitted on the calibration activations "
             "(`--refine-codewords data`). Compression time and peak memory: the compressing process (fit + encode; "
             "peak RSS growth), on this shared machine.", "",
             f"| variant | curve | ratio | {p} | compress s | peak MB | calib samples | note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.variant} | {r.series} | {r.ratio:.2f}x | {r.fidelity.get(p, float('nan')):.4f} | "
                     f"{_fmt(r.compress_s, '.1f')} | {_fmt(r.compress_peak_mb, '.0f')} | {r.calib_samples or '-'} | "
                     f"{r.note} |")
    if result.target and result.target["metric"] in rows[0].fidelity:
        metric, threshold = result.target["metric"], result.target["threshold"]
        lines += ["", f"Best ratio at `{metric}` >= {threshold:g}, per curve:", ""]
        for series in dict.fromkeys(r.series for r in rows):
            good = [r for r in rows if r.series == series and r.fidelity[metric] >= threshold]
            best = max(good, key=lambda r: r.ratio, default=None)
            lines.append(f"- {series}: " + (f"{best.variant}: {best.ratio:.2f}x ({best.fidelity[metric]:.4f})" if best
                                            else "none of its points reaches it"))
    return lines + [""]


def plot_vq(result: ModelResult, ax) -> None:
    styles = {"E8": "v-", "E8 + data tables": "v--", "PQ (EM)": "s-", "PQ (EM + fine-tuning)": "s--",
              "scalar": "o:", "scalar + data tables": "o-."}
    rows = [r for r in result.rows if r.kind == "vq"]
    for series in dict.fromkeys(r.series for r in rows):
        pts = sorted((r for r in rows if r.series == series), key=lambda r: r.file_bytes)
        ax.plot([r.file_bytes / 1e6 for r in pts], [r.fidelity[result.primary] for r in pts], styles.get(series, "o:"),
                label=series, markersize=5)


def merge_default(earlier: ModelResult, fresh: ModelResult) -> ModelResult:
    """``earlier`` with its default-command rows and records replaced by those of ``fresh``
    (a run with only them: --default-only), every other row kept."""
    kept = [r for r in earlier.rows if r.kind != "default"]
    return ModelResult(earlier.model, earlier.title, earlier.primary, earlier.original_bytes, earlier.weights,
                       rows=kept + [r for r in fresh.rows if r.kind == "default"], skipped=earlier.skipped,
                       target=fresh.target or earlier.target, allocations=earlier.allocations,
                       defaults=fresh.defaults)


def summary_section(results: list[ModelResult]) -> list[str]:
    """One line per model: the default command (only --calib) and with the zoo's stated target,
    against the best hand-picked row meeting the zoo target and the fp16 / ORT int8 anchors,
    all measured on the evaluation inputs."""
    lines = ["## The default command on every zoo model", "",
             "`onnx-udc compress M -o out --calib C` with no other option (and, where the zoo states one, with its "
             "target given, e.g. `--min-agreement 0.97`), evaluated on the zoo's evaluation inputs. Calibration "
             "and evaluation samples are disjoint except for ResNet-20, whose package carries only the 10,000 test "
             "images: its 256 calibration images are the last of them (2.6% of its evaluation set). "
             "\"Best hand-picked\": the smallest other onnx-udc row of the model's "
             "section (fixed steps, allocations, PQ / E8 recipes) that meets the zoo target there.", "",
             "| model | zoo target | default | meets | stated target | meets | best hand-picked | fp16 | ORT int8 | "
             "default s / peak MB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for res in results:
        target = res.target or {}
        metric, threshold = target.get("metric"), target.get("threshold")
        if metric is None:
            continue

        def cell(row):
            return f"{row.ratio:.2f}x, {row.fidelity.get(metric, float('nan')):.4f}" if row else "-"

        def meets(row):
            return "-" if row is None else ("yes" if row.fidelity.get(metric, -math.inf) >= threshold else "**no**")

        rows = {r.variant: r for r in res.rows if r.kind == "default"}
        default, stated = rows.get("onnx-udc default"), rows.get("onnx-udc auto, zoo target stated")
        info = res.defaults.get("onnx-udc default", {})
        if default is None and "missed" in info:
            dcell = f"refused: {info['missed']}"
        else:
            dcell = cell(default)
        picked = [r for r in res.rows if r.kind in ("udc", "alloc", "vq") and r.loader in ("udc-fast", "udc-custom-op")
                  and r.fidelity.get(metric, -math.inf) >= threshold]
        best = max(picked, key=lambda r: r.ratio, default=None)
        anchors = {r.variant: r for r in res.rows if r.kind == "anchor"}
        time_mem = (f"{info['seconds']:.0f} / {_fmt(info.get('peak_mb'), '.0f')}" if info.get("seconds") is not None
                    else "-")
        lines.append(f"| {res.title} | {metric} >= {threshold:g} | {dcell} | {meets(default)} | {cell(stated)} | "
                     f"{meets(stated)} | {(best.variant + ': ' + cell(best)) if best else '-'} | "
                     f"{cell(anchors.get('fp16'))} | {cell(anchors.get('ORT int8 dynamic'))} | {time_mem} |")
    return lines + [""]


def merge_vq(earlier: ModelResult, fresh: ModelResult) -> ModelResult:
    """``earlier`` (a full benchmark of the model) with its vector-quantizer rows replaced by
    those of ``fresh`` (a run with only them: --pq-only), so RESULTS.md keeps every other row."""
    kept = [r for r in earlier.rows if r.kind != "vq"]
    return ModelResult(earlier.model, earlier.title, earlier.primary, earlier.original_bytes, earlier.weights,
                       rows=kept + [r for r in fresh.rows if r.kind == "vq"], skipped=earlier.skipped,
                       target=earlier.target or fresh.target, allocations=earlier.allocations)


# ---- the command: python -m models.bench (from the checkout root) ----------------------
import click  # noqa: E402

from onnx_udc.errors import ConfigError  # noqa: E402


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--models", "model_names", default=None, help="comma-separated zoo models (default: all available)")
@click.option("--quick", is_flag=True, help="smoke test: bundled model, two settings, few samples")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="folder for RESULTS.md, plots and JSON (default: docs/results, or a temporary folder with --quick)")
@click.option("--steps", default=None, help="comma-separated step-rel values of the onnx-udc sweep")
@click.option("--limit", type=int, default=None, help="evaluation samples per model")
@click.option("--no-memory", is_flag=True, help="skip the peak-memory subprocesses")
@click.option("--repeat", type=int, default=None, help="session creations timed per variant (default 5)")
@click.option("--runs", type=int, default=None, help="runs timed per variant (default 20)")
@click.option("--keep-work", is_flag=True, help="keep the folder of compressed variants")
@click.option("--no-allocation", is_flag=True, help="skip the rate-allocated variants")
@click.option("--pq/--no-pq", "vq", default=False, show_default=True,
              help="add PQ and E8 rows, each without / with fine-tuning on calibration data (slow)")
@click.option("--default-only", is_flag=True,
              help="only the default command's rows, merged into the model's earlier results in --out")
@click.option("--pq-only", is_flag=True,
              help="only the --pq rows, merged into the model's earlier results in --out (its other rows are kept)")
def bench_command(model_names, quick, out, steps, limit, no_memory, repeat, runs, keep_work, no_allocation, vq=False, pq_only=False,
                  default_only=False):
    """Benchmark onnx-udc against fp16, ORT int8/int4 and brotli on the zoo models."""
    from dataclasses import replace

    from . import zoo

    benchmark = sys.modules[__name__]
    config = benchmark.BenchConfig()
    if quick:
        config = replace(config, steps=(0.1, 0.4), limit=500, repeat=1, runs=3, calib_samples=32, max_allocations=1)
        model_names = model_names or "fmnist"
    if no_allocation:
        config = replace(config, allocate=False)
    if vq or pq_only:
        config = replace(config, pq=True)
    if pq_only:
        config = replace(config, steps=(), anchors=(), allocate=False, default=False)
    if default_only:
        config = replace(config, steps=(), anchors=("fp16", "int8-dynamic"), allocate=False, pq=False, default=True)
    if steps:
        try:
            config = replace(config, steps=tuple(float(s) for s in steps.split(",")))
        except ValueError:
            raise ConfigError(f"--steps must be comma-separated numbers, got {steps!r}") from None
    if limit is not None:
        config = replace(config, limit=limit)
    if no_memory:
        config = replace(config, memory=False)
    if repeat is not None:
        config = replace(config, repeat=max(1, repeat))
    if runs is not None:
        config = replace(config, runs=max(1, runs))
    names = model_names.split(",") if model_names else zoo.names()
    out = out or (benchmark.default_workdir() if quick else ROOT / "docs" / "results")
    work = benchmark.default_workdir()
    results = []
    command = run_command(sys.argv[1:])
    for name in names:
        try:
            model = zoo.get(name)
            click.echo(f"{name}: building / loading", err=True)
            result = benchmark.benchmark_model(model, config, work, log=lambda m: click.echo(m, err=True))
            earlier = out / f"bench_{model.name}.json"
            if pq_only and earlier.exists():
                result = benchmark.merge_vq(benchmark.load_result(earlier), result)
            elif default_only and earlier.exists():
                result = benchmark.merge_default(benchmark.load_result(earlier), result)
            results.append(result)
        except zoo.ZooUnavailable as exc:
            if model_names:
                raise ConfigError(f"{name}: {exc}") from None
            click.echo(f"{name}: skipped: {exc}", err=True)
        # Written after every model, so a long run that stops keeps what it measured.
        report = benchmark.write_report(results, out, command, config)
    if keep_work:
        click.echo(f"compressed variants kept in {work}", err=True)
    else:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    for res in results:
        click.echo(f"\n## {res.title}\n")
        click.echo(benchmark.markdown_table(res))
        click.echo("\n".join(benchmark.best_matches(res)))
    click.echo(f"\nreport: {report}")


def main(argv: list[str] | None = None) -> int:
    """``python -m models.bench``: errors as one line and an exit code, like onnx-udc's."""
    from onnx_udc.errors import UdcError

    try:
        bench_command.main(args=argv, prog_name="python -m models.bench", standalone_mode=False)
    except UdcError as exc:
        click.echo(f"models.bench: error: {exc}", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
