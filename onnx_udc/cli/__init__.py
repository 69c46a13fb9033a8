"""The ``onnx-udc`` command line. ``main(argv)`` returns the exit code.

Exit codes: 0 ok, 1 other onnx-udc error, 2 bad model / usage / option, 3 corrupt or
unsupported blob, 4 output cannot be written, 5 native library missing, 6 fidelity target
missed (nothing written), 70 internal error, 130 interrupted (Ctrl-C), 143 terminated
(SIGTERM). Interrupted or terminated, nothing is left behind: SIGTERM is raised as an
exception so that the staging folder of a write in progress is removed.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

import click

from .. import coders, quantizers
from ..errors import ConfigError, UdcError
from ..quantizers.base import DEFAULT_STEP_REL

_LOSSY = [n for n in quantizers.names() if not quantizers.by_name(n).lossless]

INTERNAL_ERROR = 70
TERMINATED = 143  # 128 + SIGTERM


class _Terminated(BaseException):
    """SIGTERM, raised where the process is so that ``finally`` blocks run (staging removed)."""


def _console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped or captured output is not wrapped at 80 columns.
    return Console(stderr=stderr, highlight=False, width=None if stream.isatty() else 160)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GB"


def _fmt_db(x: float) -> str:
    return "lossless" if math.isinf(x) else f"{x:.1f}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="onnx-udc")
def cli() -> None:
    """Compress ONNX weights; run the result in stock onnxruntime."""


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path), help="compressed model to write")
@click.option("--quantizer", type=click.Choice(["auto", *_LOSSY]), default="auto", show_default=True,
              help="quantizer of float weights; auto: chosen per tensor with its step by the rate allocation among "
                   "the step quantizers (scalar, the lattices; scalar with --step-rel)")
@click.option("--step-rel", type=float, default=None, help=f"step as a fraction of each tensor's RMS (default {DEFAULT_STEP_REL})")
@click.option("--target-bpw", type=float, default=None, help="solve each tensor's step for this many bits per weight")
@click.option("--target-ratio", type=float, default=None, help="rate allocation: the best fidelity at this file-size ratio")
@click.option("--target-size", type=int, default=None, help="rate allocation: the best fidelity within this many bytes")
@click.option("--min-sqnr", type=float, default=None, help="rate allocation: the smallest file whose output SQNR (dB) stays above this")
@click.option("--min-agreement", type=float, default=None, help="rate allocation: the smallest file keeping this top-1 agreement (0-1)")
@click.option("--min-cosine", type=float, default=None, help="rate allocation: the smallest file keeping this mean output cosine")
@click.option("--min-output-sqnr", type=float, default=None,
              help="rate allocation: the smallest file whose worst per-output SQNR (dB, each output on its own) stays above this")
@click.option("--allow-miss", is_flag=True,
              help="write the model even if it misses its fidelity target on the held-out samples (default: exit 6, write nothing)")
@click.option("--keep", "keep", default=None, metavar="REGEX", help="weights whose name matches stay exact")
@click.option("--outputs", "outputs", default=None, metavar="NAMES",
              help="comma-separated model outputs the fidelity target is measured on (default: all)")
@click.option("--calib", type=click.Path(path_type=Path), default=None,
              help="calibration inputs: .npz with one array per model input (samples on axis 0) or a folder of images; "
                   "a quarter is held out for the final fidelity check. 'synthetic': inputs made from the model's "
                   "input specification (a last resort: a stricter margin, flagged in the report)")
@click.option("--calib-samples", type=int, default=None,
              help="calibration samples read, a quarter held out for the final check (default, from the model and "
                   "data only, never from timing: 192 to fit, fewer for a model above 195 M multiply-accumulates a "
                   "sample (a pass over them within 5e10, never below 48), and a quarter held out, grown for an "
                   "agreement target to the samples that can confirm it (299 for 0.99) when the data has them)")
@click.option("--small-calib", "small_calib", type=click.Choice(["margin", "error", "accept"]), default="margin",
              show_default=True,
              help="held-out samples too few to confirm an agreement target at 95% confidence: plan with half the "
                   "allowed deficit (margin), stop with the samples needed (error), or only warn (accept)")
@click.option("--distill", "distill", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True,
              help="end-to-end distillation of what the decoder reads (centroids, codeword tables, steps) toward the "
                   "original outputs on the fit samples, before the held-out check; auto: when torch is installed "
                   "(pip install 'onnx-udc[finetune]')")
@click.option("--plan-out", type=click.Path(path_type=Path), default=None, help="write the chosen allocation as JSON")
@click.option("--seed", type=int, default=0, show_default=True, help="dither seed of the model")
@click.option("--min-elements", type=int, default=1024, show_default=True, help="smaller initializers stay dense")
@click.option("--coder", type=click.Choice(["auto", *coders.names()]), default="auto", show_default=True,
              help="lossless coder (auto: rans, and brotli too for lossless 2- and 4-byte tensors)")
@click.option("--threads", type=int, default=None, help="parallel encoders (default: all cores)")
@click.option("--backend", type=click.Choice(["threads", "processes", "ray"]), default="threads", show_default=True,
              help="where the fixed-step encode jobs run: local threads, local processes, or a Ray cluster "
                   "(pip install onnx-udc[ray]); the same bytes for each")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="--backend ray: the cluster to use (ray.init's address: auto, ray://host:10001; default: a local "
                   "instance)")
@click.option("-q", "--quiet", is_flag=True, help="no progress bar and no table")
# ---- product quantization (--quantizer pq) options ----
@click.option("--pq-k", type=int, default=256, show_default=True, help="pq: centroids per layer (lowered for small layers)")
@click.option("--pq-block", default="conv3x3=9,conv1x1=4,conv=8,matmul=4", show_default=True,
              help="pq: block size per layer type")
@click.option("--pq-iterations", type=int, default=10, show_default=True, help="pq: EM / k-means iterations")
@click.option("--pq-refine", type=int, default=20, show_default=True,
              help="pq: iterations of the centroid fine-tuning on the calibration activations (0: none)")
@click.option("--pq-rounds", type=int, default=1, show_default=True,
              help="pq: rounds of full output-error reassignment + fine-tuning (1: fine-tuning only)")
@click.option("--pq-target", type=click.Choice(["weights", "output"]), default="weights", show_default=True,
              help="pq: fit each layer to its own weights' output, or toward the original model's layer output "
                   "(also makes up for the pq layers below; needs enough calibration rows per input width)")
# ---- codeword tables of the scalar / lattice quantizers ----
@click.option("--refine-codewords", type=click.Choice(["none", "weights", "data"]), default="none", show_default=True,
              help="scalar/lattice: refined codeword tables, least squares on the weights, or on the calibration "
                   "activations toward the original model's layer outputs (data: needs --calib)")
@click.option("--codeword-target", type=click.Choice(["output", "weights"]), default="output", show_default=True,
              help="--refine-codewords data: fit toward the original layer outputs, or the layer's own weights "
                   "(safer with few calibration rows per input width, e.g. short sentences)")
def compress(model, output, quantizer, step_rel, target_bpw, target_ratio, target_size, min_sqnr, min_agreement, min_cosine,
             min_output_sqnr, allow_miss, keep, outputs, calib, calib_samples, small_calib, plan_out, seed, min_elements, coder, threads,
             backend="threads", ray_address=None, quiet=False, distill="auto", pq_k=256, pq_block="conv3x3=9,conv1x1=4,conv=8,matmul=4",
             pq_iterations=10, pq_refine=20, pq_rounds=1,
             pq_target="weights", refine_codewords="none", codeword_target="output"):
    """Replace every large weight of MODEL by a compressed decode node.

    By default the smallest model that keeps a fidelity target chosen from the model's
    outputs (top-1 agreement >= 0.99 for class scores, mean cosine >= 0.99 for an
    embedding, else every output within 30 dB), measured on held-out calibration samples
    (--calib; --calib synthetic only as a last resort, with a stricter margin). A miss
    exits 6 and writes nothing. One explicit target (--target-ratio, --target-size, --min-sqnr,
    --min-output-sqnr, --min-agreement, --min-cosine) replaces the default; --step-rel or
    --target-bpw gives the fixed-step mode (one step rule for all tensors, no check).
    """
    from dataclasses import replace

    from ..encoder import backends
    from ..graph.modelio import (PROTO_LIMIT, SPILL_MIN_BYTES, deferred_bytes, load_deferred, load_model, proto_size,
                                 save_model, spill_file, stored_bytes)
    from ..pipeline import compress as run_pipeline

    _check_writable(output, model)
    if plan_out is not None:
        _check_writable(plan_out)
    if ray_address is not None and backend != "ray":
        raise ConfigError("--ray-address needs --backend ray")
    backends.check(backend, ray_address)
    proto = load_model(model, defer_external=True)  # external weights read one at a time when encoded
    original_file = stored_bytes(model, proto)
    spec, why = _compress_spec(proto, quantizer, step_rel, target_bpw, target_ratio, target_size, min_sqnr, min_agreement,
                               min_cosine, min_output_sqnr, allow_miss, keep, outputs, calib, calib_samples, small_calib, plan_out, seed,
                               min_elements, coder, threads, pq_k, pq_block, pq_iterations, pq_refine, pq_rounds,
                               pq_target, refine_codewords, codeword_target)
    spec = replace(spec, config=replace(spec.config, backend=backend, backend_address=ray_address), distill=distill)
    if spec.needs_calibration or spec.pq is not None:
        if backend != "threads":
            raise ConfigError(f"--backend {backend} runs fixed-step compression (--step-rel or --target-bpw); the "
                              "calibrated planners encode on local threads")
        load_deferred(proto)  # the calibrated planners run the whole model
    notes = _type_notes(proto, min_elements)  # before the pipeline rewrites proto in place
    # a large model from external data: each blob written as it is coded, the output with external data
    stream = not (spec.needs_calibration or spec.pq is not None) and deferred_bytes(proto) >= SPILL_MIN_BYTES
    with contextlib.ExitStack() as stack:
        spill = stack.enter_context(spill_file(output)) if stream else None
        result = _run_compress(proto, spec, quiet, run_pipeline, min_elements, spill)
        for warning in result.warnings:
            click.echo(f"onnx-udc: warning: {warning}", err=True)
        external = stream or proto_size(result.model) > PROTO_LIMIT
        save_model(result.model, output, external=external)
    data_file = output.parent / (output.name + ".data")
    compressed_file = output.stat().st_size + (data_file.stat().st_size if external else 0)
    for note in notes:
        click.echo(f"onnx-udc: note: {note}", err=True)
    if plan_out is not None and result.allocation is not None:
        import json

        data = result.allocation.to_dict()
        if result.verification is not None:  # the user's target; the allocation's may be stricter after a miss
            data["allocation_target"] = data["target"]
            data["target"] = {"kind": spec.target.kind, "value": spec.target.value}
            data["verification"] = result.verification.to_dict()
        from ..graph.modelio import write_file

        write_file(plan_out, json.dumps(data, indent=1).encode())
    if quiet:
        return
    if result.pq is not None:
        fit = result.pq
        click.echo(f"pq: {len(fit.fits)} layers fitted in {fit.seconds:.1f} s "
                   f"({'calibration: ' + str(fit.samples) + ' samples' if fit.calibrated else 'k-means, no calibration'}); "
                   "other weights: scalar")
    if result.tables is not None:
        _print_tables(result.tables)
    if result.allocation is not None:
        _print_allocation(result.allocation)
    _print_report(result.report, original_file, compressed_file)
    if result.verification is not None:
        v = result.verification
        if why:
            _console().print(f"target: {spec.target.describe()}, the default because {why} (choose another with "
                             "--min-agreement, --min-cosine, --min-output-sqnr, --min-sqnr or --target-ratio; fixed "
                             "steps: --step-rel)")
        _console().print(f"fidelity: {v.describe()}: [b]{'ok' if v.passed else 'MISSED'}[/b]"
                         + (f" ({v.attempts} attempts)" if v.attempts > 1 else ""))
    if result.seconds.get("total"):
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items() if k != "total" and v >= 0.05)
        _console().print(f"time: {result.seconds['total']:.1f} s" + (f" ({stages})" if stages else ""))


def _run_compress(proto, spec, quiet, run_pipeline, min_elements, spill):
    """The pipeline with the console's status line or progress bar."""
    if spec.needs_calibration and spec.calib is None:
        click.echo("onnx-udc: warning: calibration runs on inputs synthesized from the model's input specification, "
                   "which exercise it like noise does (a stricter margin is used); the fidelity reported is measured "
                   "on them, not on real data. Real in-domain inputs (--calib) are strongly preferred.", err=True)
    err = _console(stderr=True)
    log = None if quiet else (lambda msg: err.print(f"[dim]{msg}[/dim]"))
    if quiet or spec.needs_calibration or spec.pq is not None:
        if not quiet and err.is_terminal:  # a live line saying which stage runs
            with err.status("calibrating") as status:
                result = run_pipeline(proto, spec, log=lambda msg: (status.update(msg), log(msg)), inplace=True,
                                      spill=spill)
        else:
            result = run_pipeline(proto, spec, log=log, inplace=True, spill=spill)
    else:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from ..graph.select import Action, select

        total = sum(c.numel for c in select(proto, min_elements) if c.action is not Action.KEEP)
        with Progress(
            TextColumn("compressing"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
            console=_console(stderr=True), transient=True,
        ) as bar:
            task = bar.add_task("compress", total=max(total, 1))
            result = run_pipeline(proto, spec, progress=lambda n: bar.advance(task, n), inplace=True, spill=spill)
    return result


def _type_notes(proto, min_elements: int) -> list[str]:
    """One line per element type of the weights kept dense for their type (float64, bfloat16)."""
    from ..graph.select import kept_for_type, select

    return [f"{k.count} {k.dtype} tensor{'s' if k.count > 1 else ''} ({_fmt_bytes(k.nbytes)}) kept dense: "
            "onnx-udc compresses float32/float16 weights (and int8/uint8/int32 weights of quantized ops)"
            for k in kept_for_type(select(proto, min_elements))]


def _compress_spec(proto, quantizer, step_rel, target_bpw, target_ratio, target_size, min_sqnr, min_agreement,
                   min_cosine, min_output_sqnr, allow_miss, keep, outputs, calib, calib_samples, small_calib, plan_out, seed, min_elements,
                   coder, threads, pq_k, pq_block, pq_iterations, pq_refine, pq_rounds, pq_target, refine_codewords,
                   codeword_target):
    """The compress options as a pipeline spec (every option check happens here), and why
    the target was chosen when it is the default (else "")."""
    from ..encoder import CompressConfig
    from ..fit.allocate import Target
    from ..fit.fidelity import default_target
    from ..pipeline import CompressSpec, PQSpec, TablesSpec
    from ..pipeline.compress import auto_methods
    from ..quantizers.base import StepConfig

    targets = {"ratio": target_ratio, "size": target_size, "sqnr": min_sqnr, "agreement": min_agreement,
               "cosine": min_cosine, "output_sqnr": min_output_sqnr}
    targets = {k: v for k, v in targets.items() if v is not None}
    if min_elements < 1:
        raise ConfigError("--min-elements must be at least 1")
    if not 0 <= seed < 2**64:
        raise ConfigError("--seed must lie in [0, 2^64)")
    if len(targets) > 1:
        raise ConfigError("give one target: --target-ratio, --target-size, --min-sqnr, --min-output-sqnr, "
                          "--min-agreement or --min-cosine")
    if keep is not None:
        import re

        try:
            re.compile(keep)
        except re.error as exc:
            raise ConfigError(f"--keep: {keep!r} is not a regular expression ({exc})") from None
    selected = tuple(o.strip() for o in outputs.split(",") if o.strip()) if outputs else None
    if selected:
        declared = [o.name for o in proto.graph.output]
        unknown = [o for o in selected if o not in declared]
        if unknown:
            raise ConfigError(f"--outputs: the model has no output(s) {unknown}; its outputs are {declared}")
    fixed = step_rel is not None or target_bpw is not None
    synthetic = calib is not None and str(calib) == "synthetic"
    if synthetic:
        calib = None  # the pipeline synthesizes
    why = ""
    if not targets and not fixed:
        kind, value, why = default_target(proto, selected)
        targets = {kind: value}
    (kind, value), = targets.items() if targets else ((None, None),)
    target = Target(kind, float(value)) if kind is not None else None

    def need_data() -> None:  # after the method-specific checks, so that their messages come first
        if target is not None and not target.is_size and calib is None and not synthetic:
            raise ConfigError(f"{target.describe()} is measured on calibration inputs: pass --calib inputs.npz (one "
                              "array per model input) or --calib images/ (with a preprocess.json); --calib synthetic "
                              "uses made-up inputs (a last resort); --step-rel 0.05 compresses with fixed steps and no "
                              "fidelity check")

    common = dict(calib=calib, calib_samples=calib_samples, small_holdout=small_calib, allow_miss=allow_miss,
                  outputs=selected)
    methods = None
    if quantizer == "auto":
        quantizer = "scalar"
        if target is not None:
            methods = auto_methods(target)
    if not quantizers.by_name(quantizer).has_step:  # product quantization: fitted, no step
        if fixed or (target is not None and target.is_size):
            raise ConfigError(f"--quantizer {quantizer} takes no step or size target; use --pq-k / --pq-block "
                              "(a fidelity target is checked at the end)")
        from ..quantizers.pq import PQConfig

        pq_config = PQConfig(block=parse_pq_blocks(pq_block), k=pq_k, iterations=pq_iterations, seed=seed)
        if pq_refine < 0 or pq_rounds < 1:
            raise ConfigError("--pq-refine must be >= 0 and --pq-rounds >= 1")
        if pq_target == "output" and calib is None:
            raise ConfigError("--pq-target output needs calibration inputs (--calib)")
        config = CompressConfig(coder=coder, seed=seed, min_elements=min_elements, threads=threads, keep=keep)
        need_data()
        return CompressSpec(config=config, target=target, pq=PQSpec(pq_config, pq_refine, pq_rounds, pq_target),
                            **common), why
    if refine_codewords == "data" and calib is None:
        raise ConfigError("--refine-codewords data needs calibration inputs (--calib)")
    if target is not None and fixed:
        raise ConfigError("a rate-allocation target replaces --step-rel / --target-bpw: give one or the other")
    if fixed and ((calib is not None and refine_codewords != "data") or plan_out is not None):
        raise ConfigError("--calib and --plan-out need target-driven compression; --step-rel / --target-bpw fix "
                          "the steps (drop them to use the calibration inputs)")
    if step_rel is not None and target_bpw is not None:
        raise ConfigError("give either --step-rel or --target-bpw, not both")
    steps = StepConfig(step_rel=DEFAULT_STEP_REL if step_rel is None else step_rel, target_bpw=target_bpw,
                       refine=refine_codewords == "weights")
    config = CompressConfig(quantizer=quantizer, coder=coder, scalar=steps, seed=seed, min_elements=min_elements,
                            threads=threads, keep=keep)
    tables = TablesSpec(codeword_target) if refine_codewords == "data" else None
    need_data()
    return CompressSpec(config=config, target=target, tables=tables, methods=methods, **common), why


# ---- product quantization ------------------------------------------------------------
def parse_pq_blocks(spec: str) -> dict[str, int]:
    """"conv3x3=9,matmul=4" -> {"conv3x3": 9, "matmul": 4} (other layer types keep their default)."""
    from ..quantizers.pq import PQConfig

    blocks = dict(PQConfig().block)
    for item in filter(None, (p.strip() for p in spec.split(","))):
        key, _, value = item.partition("=")
        if key not in blocks or not value.strip().isdigit():
            raise ConfigError(f"--pq-block: {item!r} is not TYPE=SIZE with TYPE one of {sorted(blocks)}")
        blocks[key] = int(value)
    return blocks


def _print_tables(tables) -> None:
    entries = sum(l.fit.entries for l in tables.layers)
    before = sum(l.fit.error_input for l in tables.layers)
    after = sum(l.fit.error_final for l in tables.layers)
    click.echo(f"codeword tables: {len(tables.layers)} layers, {entries} entries (+{tables.extra_bytes:,} bytes), "
               f"layer-output error x{after / max(before, 1e-300):.3f}, {tables.samples} calibration samples, "
               f"{tables.seconds:.1f} s", err=True)


def _print_allocation(alloc) -> None:
    from rich.table import Table

    table = Table(title=f"rate allocation: {alloc.target.describe()}", title_justify="left")
    for col in ("tensor", "weights", "method", "sensitivity", "step/RMS", "bits/w", "share of D"):
        table.add_column(col, justify="left" if col == "tensor" else "right", overflow="fold")
    total = max(alloc.predicted_distortion, 1e-300)
    for t in alloc.tensors:
        table.add_row(t.name, f"{t.numel:,}", t.quantizer, f"{t.sensitivity:.3g}", "exact" if t.step is None else f"{t.step_rel:.4f}",
                      f"{t.bits:.2f}", f"{100 * t.distortion / total:.1f}%")
    console = _console()
    console.print(table)
    db = lambda d: _fmt_db(-10 * math.log10(d)) if d > 0 else "inf"  # noqa: E731
    console.print(
        f"calibration: {alloc.samples} samples ({alloc.calibration}{', SYNTHETIC' if alloc.synthetic else ''}); "
        f"output distortion predicted {db(alloc.predicted_distortion)} dB, measured {db(alloc.measured_distortion)} dB; "
        f"{alloc.metric} on the calibration inputs {alloc.measured_metric:.4g}; "
        f"allocation took {sum(alloc.seconds.values()):.1f} s"
    )


def _print_report(report, original_file: int, compressed_file: int) -> None:
    from rich.table import Table

    table = Table(title="onnx-udc compress", title_justify="left")
    for col in ("tensor", "shape", "dtype", "original", "compressed", "ratio", "bits/w", "entropy", "SQNR dB"):
        table.add_column(col, justify="left" if col in ("tensor", "shape", "dtype") else "right", overflow="fold")
    for t in report.tensors:
        table.add_row(
            t.name, "x".join(map(str, t.shape)), t.dtype, _fmt_bytes(t.original_bytes), _fmt_bytes(t.blob_bytes),
            f"{t.original_bytes / t.blob_bytes:.1f}x", f"{t.bits_per_weight:.2f}", f"{t.entropy_bits:.2f}",
            _fmt_db(t.sqnr_db),
        )
    weights = sum(math.prod(t.shape) for t in report.tensors)
    orig = sum(t.original_bytes for t in report.tensors)
    comp = sum(t.blob_bytes for t in report.tensors)
    if report.tensors:
        ent = sum(t.entropy_bits * math.prod(t.shape) for t in report.tensors) / max(weights, 1)
        table.add_row(
            f"[b]{len(report.tensors)} tensors[/b]", "", "", _fmt_bytes(orig), _fmt_bytes(comp),
            f"{orig / max(comp, 1):.1f}x", f"{8 * comp / max(weights, 1):.2f}", f"{ent:.2f}", "",
        )
    console = _console()
    console.print(table)
    console.print(
        f"file: {_fmt_bytes(original_file)} -> {_fmt_bytes(compressed_file)} "
        f"([b]{original_file / max(compressed_file, 1):.2f}x[/b]); "
        f"{len(report.kept)} tensors kept dense"
    )


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path))
@click.option("--decoder", type=click.Choice(["python", "native"]), default="python", show_default=True,
              help="reference decoder or the C++ library (identical bytes)")
def decompress(model, output, decoder):
    """Turn a compressed MODEL back into a plain ONNX model."""
    from ..graph.modelio import SPILL_MIN_BYTES, deferred_bytes, load_model, save_model, spill_file
    from ..graph.rewrite import decompress_model, dense_bytes

    _check_writable(output, model)
    proto = load_model(model, defer_external=True)  # blobs in external data read from maps
    kwargs = {}
    if decoder == "native":
        from ..native import native_decoder

        kwargs["decoder"] = native_decoder().decode
    if deferred_bytes(proto) or dense_bytes(proto) >= SPILL_MIN_BYTES:  # large: one dense tensor in memory at a time
        with spill_file(output) as spill:
            save_model(decompress_model(proto, inplace=True, spill=spill, **kwargs), output)
    else:
        save_model(decompress_model(proto, inplace=True, **kwargs), output)


@cli.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--all", "show_all", is_flag=True, help="also list small initializers")
def inspect(model, show_all):
    """Per-tensor table of MODEL: shape, dtype, bytes, bits per weight."""
    from rich.table import Table

    from ..graph.inspect import inspect_model
    from ..graph.modelio import load_model, stored_bytes

    proto = load_model(model, defer_external=True)  # blobs and weights in external data: mapped when read
    rows = inspect_model(proto)
    table = Table(title=str(model), title_justify="left")
    for col in ("tensor", "shape", "dtype", "storage", "bytes", "bits/w", "step"):
        table.add_column(col, justify="left" if col in ("tensor", "shape", "dtype", "storage") else "right", overflow="fold")
    shown = [r for r in rows if show_all or r.compressed or r.numel >= 1024]
    for r in shown:
        table.add_row(r.name, "x".join(map(str, r.shape)) or "scalar", r.dtype, r.storage, f"{r.nbytes:,}",
                      f"{r.bits_per_weight:.2f}", f"{r.step:.3g}" if r.step else "")
    total_bytes = sum(r.nbytes for r in rows)
    total_w = sum(r.numel for r in rows)
    table.add_row(f"[b]{len(rows)} tensors[/b]" + ("" if len(shown) == len(rows) else f" ({len(rows) - len(shown)} small hidden)"),
                  "", "", "", f"{total_bytes:,}", f"{8 * total_bytes / max(total_w, 1):.2f}", "")
    _console().print(table)
    stored = stored_bytes(model, proto)
    _console().print(f"file size: {model.stat().st_size:,} bytes"
                     + (f" ({stored:,} with its external data)" if stored != model.stat().st_size else ""))


@cli.command()
@click.argument("original", type=click.Path(path_type=Path))
@click.argument("compressed", type=click.Path(path_type=Path))
@click.option("--inputs", type=click.Path(path_type=Path), default=None,
              help=".npz of input arrays (keys = input names); random inputs otherwise")
@click.option("--path", "load_path", type=click.Choice(["fast", "custom-op"]), default="custom-op", show_default=True,
              help="run the compressed model through the fast loader or the registered custom op")
def verify(original, compressed, inputs, load_path):
    """Run ORIGINAL and COMPRESSED on the same inputs; compare outputs."""
    import numpy as np

    from ..load.session import InferenceSession
    from ..load.verify import compare_files, load_feeds, random_feeds

    from rich.table import Table

    # one onnxruntime session at a time: the original's outputs, then the compressed model's
    results, feeds = compare_files(original, compressed,
                                   (lambda ref: load_feeds(inputs, ref)) if inputs else random_feeds,
                                   fast=(load_path == "fast"), session=InferenceSession)
    samples = next((int(v.shape[0]) for v in feeds.values() if np.ndim(v) >= 1), 1)
    where = (f"inputs: {inputs} ({samples} samples)" if inputs else
             f"inputs: {samples} RANDOM samples from the input specification (pass --inputs for real data)")
    table = Table(title=f"{compressed} vs {original}", title_justify="left", caption=where, caption_justify="left")
    columns = ["output", "max |error|", "SQNR dB"]
    if any(c.cosine is not None for c in results):
        columns.append("mean cosine")
    if any(c.top1_agreement is not None for c in results):
        columns.append("top-1 agreement")
    for col in columns:
        table.add_column(col, justify="left" if col == "output" else "right", overflow="fold")
    for c in results:
        row = [c.name, f"{c.max_abs_error:.3g}", _fmt_db(c.sqnr_db)]
        if "mean cosine" in columns:
            row.append("" if c.cosine is None else f"{c.cosine:.5f}")
        if "top-1 agreement" in columns:
            row.append("" if c.top1_agreement is None else f"{100 * c.top1_agreement:.2f}%")
        table.add_row(*row)
    _console().print(table)


def _check_writable(output: Path, source: Path | None = None) -> None:
    """Fail before any work when the output cannot be written, or would overwrite the input."""
    from ..errors import OutputError

    if source is not None and Path(source).exists() and output.exists() and os.path.samefile(source, output):
        raise OutputError(f"{output}: is the input model itself; choose another output path (the input is never overwritten)")
    folder = output.parent
    if not folder.is_dir():
        raise OutputError(f"{output}: folder {folder} does not exist")
    if output.is_dir():
        raise OutputError(f"{output}: is a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{output}: folder {folder} is not writable")


def main(argv: list[str] | None = None) -> int:
    _quiet_onnxruntime()
    restore = _on_sigterm()
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            code = cli.main(args=argv, prog_name="onnx-udc", standalone_mode=False)
    except _Terminated:
        click.echo("onnx-udc: terminated", err=True)
        return TERMINATED
    except UdcError as exc:
        click.echo(f"onnx-udc: error: {_one_line(str(exc))}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("onnx-udc: aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("onnx-udc: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: say so in one line, full trace on request
        if os.environ.get("ONNX_UDC_DEBUG"):
            raise
        click.echo(f"onnx-udc: internal error: {type(exc).__name__}: {_one_line(str(exc))} (set ONNX_UDC_DEBUG=1 for a traceback)", err=True)
        return INTERNAL_ERROR
    finally:
        restore()
    return code if isinstance(code, int) else 0


_CONTROL = {c: repr(chr(c))[1:-1] for c in (*range(32), 127)}  # "\n" -> "\\n" and the like


def _one_line(text: str) -> str:
    """``text`` with its control characters escaped (a name or path from a hostile model
    holding a newline does not split the error line)."""
    return text.strip().translate(_CONTROL)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A Python warning (of onnx, numpy, ...) as one ``onnx-udc: warning:`` line, not two
    lines naming a source file."""
    text = str(message).strip().splitlines()
    click.echo(f"onnx-udc: warning: {_one_line(text[0]) if text else category.__name__}", err=True)


def _on_sigterm():
    """The first SIGTERM raises _Terminated from now on (main thread only), a second one
    terminates as usual; returns what puts the previous handler back."""
    def terminated(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the cleanup at once
        raise _Terminated()

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    try:
        previous = signal.signal(signal.SIGTERM, terminated)
    except (ValueError, OSError):
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _quiet_onnxruntime() -> None:
    """onnxruntime's own log (warnings, coloured error lines before our one-line errors) off
    by default (its errors reach us as exceptions); ONNX_UDC_ORT_LOG=0..4 sets its severity."""
    try:
        import onnxruntime as ort

        ort.set_default_logger_severity(int(os.environ.get("ONNX_UDC_ORT_LOG", "4")))
    except (ImportError, ValueError):
        pass


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
