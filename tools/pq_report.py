#!/usr/bin/env python3
"""Product quantization on the zoo: rate vs fidelity beside the scalar anchors, entropy-coded
vs raw indices, fit time and peak memory against the calibration set size.

    for each model: reference outputs of the fp32 model on its evaluation feeds
      scalar anchors (step_rel grid)                      -> ratio, fidelity
      pq variants (block sizes x k) x fit mode              -> ratio, pq bits/weight, fidelity,
          fit mode: kmeans (no calibration) / em (output-aware) / em+refine (centroid fine-tuning)
          indices: brotli (the blob) vs store (raw bytes) vs order-0 entropy
      calibration sweep (one variant, N samples)            -> fit seconds, peak RSS growth, fidelity
    -> docs/results/pq_<model>.json (rows, merged with earlier runs) and docs/results/pq.md:
       its hand-written introduction (everything above the first model section, kept as it
       is) + one generated section per model

Each fit runs in a forked child that reports its own peak RSS growth (ru_maxrss after
minus before), so the numbers are the fit's, not the parent's. Usage, from the checkout
root (the zoo models are built into models/cache/, or $ONNX_UDC_ZOO_CACHE):

    python tools/pq_report.py fmnist                       # hours
    python tools/pq_report.py --from-json fmnist           # only rebuild pq.md from the JSON
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import resource
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from models import zoo  # noqa: E402
from onnx_udc import coders
from onnx_udc.fit import pq_model  # noqa: E402
from onnx_udc.fit.calib import CalibrationSet  # noqa: E402
from onnx_udc.codec import symbol_entropy  # noqa: E402
from onnx_udc import CompressConfig, compress_model, decompress_model  # noqa: E402
from onnx_udc.quantizers.pq import PQConfig, encode_fit  # noqa: E402
from onnx_udc.quantizers.scalar import ScalarConfig  # noqa: E402

# model -> (pq variants: label -> block sizes / k), scalar anchors, calibration samples, max rows
PLANS = {
    "fmnist": {
        "variants": {
            "d9 k256": ({"conv3x3": 9, "conv1x1": 4, "conv": 8, "matmul": 4}, 256),
            "d18 k256": ({"conv3x3": 18, "conv1x1": 8, "conv": 8, "matmul": 8}, 256),
            "d3 k256": ({"conv3x3": 3, "conv1x1": 2, "conv": 4, "matmul": 2}, 256),
        },
        "scalar": (0.2, 0.8, 1.6),
        "samples": 256,
        "sweep": (64, 256, 1024),
        "max_rows": 1024,
        "eval": None,
    },
    "efficientnet_lite0": {
        "variants": {
            "d9 k256": ({"conv3x3": 9, "conv1x1": 4, "conv": 5, "matmul": 4}, 256),
            "d3 k256": ({"conv3x3": 3, "conv1x1": 2, "conv": 5, "matmul": 2}, 256),
        },
        "scalar": (0.02, 0.1),
        "samples": 128,
        "sweep": (),
        "max_rows": 256,
        "eval": 500,
    },
    "minilm": {
        "variants": {
            "d4 k256": ({"matmul": 4}, 256),
            "d8 k256": ({"matmul": 8}, 256),
            "d2 k256": ({"matmul": 2}, 256),
        },
        "scalar": (0.1, 0.2),
        "samples": 128,
        "sweep": (),
        "max_rows": 512,
        "eval": 500,
    },
}
_CMD = "python tools/pq_report.py"
DEFAULT_OUT = ROOT / "docs" / "results"
DEFAULT_MODES = "kmeans,em,em+refine,em+refine+reassign"
# fit mode -> (calibrated, refine CG iterations, rounds of full-error reassignment + refine)
MODES = {"kmeans": (False, 0, 1), "em": (True, 0, 1), "em+refine": (True, 20, 1), "em+refine+reassign": (True, 20, 3)}


@dataclass
class Row:
    model: str
    variant: str
    mode: str
    samples: int
    ratio: float  # original file bytes / compressed model bytes
    pq_bpw: float  # pq blob bytes (indices brotli + codebook + header) * 8 / pq weights
    pq_bpw_raw: float  # the same with the indices stored raw (coder store)
    index_entropy_bpw: float  # order-0 entropy of the indices + codebook, per pq weight
    idx_bpw: float  # the indices alone, coded (brotli), bits per pq weight
    idx_bpw_raw: float  # the indices alone, raw bytes, bits per pq weight
    pq_share: float  # pq weights / compressed weights
    fit_s: float
    peak_mb: float  # growth of the fitting process's peak RSS
    fidelity: dict


def _child(conn, src, cfg, samples, calibrated, refine, rounds, max_rows, batches):
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    model = onnx.load(str(src))
    calib = CalibrationSet(batches, False, "zoo") if calibrated else None
    fit = pq_model.fit_model(model, cfg, calib, refine=refine, rounds=rounds, max_rows=max_rows, threads=2)
    seconds = time.perf_counter() - t
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024.0
    conn.send((fit, seconds, peak))
    conn.close()


def fit_in_child(src, cfg, samples, calibrated, refine, rounds, max_rows, batches):
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(child, src, cfg, samples, calibrated, refine, rounds, max_rows, batches))
    proc.start()
    result = parent.recv()
    proc.join()
    return result


def index_costs(fit: pq_model.ModelFit, coder: str) -> tuple[float, float, float, int, float, float]:
    """Bytes of indices + params (codebooks) over all pq layers with the indices coded by
    ``coder`` / stored raw / at their order-0 entropy; and the number of pq weights."""
    c = coders.by_name(coder)
    coded = raw = ent = idx_coded = idx_raw = 0.0
    weights = 0
    for name, f in fit.fits.items():
        numel = f.indices.size * f.d  # padding included; exact for d | numel
        enc = encode_fit(f, numel)
        book = len(enc.params)  # axis order, d, k, tail and the float16 codebook
        payload = len(c.encode(enc.symbols, enc.symbol_width, enc.period))
        stored = enc.symbols.size * enc.symbol_width  # raw indices
        idx_coded += payload
        idx_raw += stored
        coded += payload + book
        raw += stored + book
        ent += symbol_entropy(enc.symbols) * enc.symbols.size / 8 + book
        weights += numel
    return coded, raw, ent, weights, idx_coded, idx_raw


def evaluate(model: onnx.ModelProto, feeds, reference, zm) -> dict:
    dense = decompress_model(model)
    sess = ort.InferenceSession(dense.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = [sess.run(None, f) for f in feeds]
    return {k: float(v) for k, v in zm.fidelity(reference, outputs).items()}


def run_model(name: str, modes: list[str], variants: list[str] | None, sweep: bool, log=print) -> list[Row]:
    plan = PLANS[name]
    zm = zoo.get(name)
    src = zm.onnx_path()
    original = src.stat().st_size
    feeds = zm.feeds(plan["eval"])
    base = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    reference = [base.run(None, f) for f in feeds]
    rows: list[Row] = []
    log(f"{name}: original {original} bytes, fidelity {evaluate(onnx.load(str(src)), feeds, reference, zm)}")
    for step in plan["scalar"]:
        model, report = compress_model(onnx.load(str(src)), CompressConfig(scalar=ScalarConfig(step_rel=step)))
        fid = evaluate(model, feeds, reference, zm)
        rows.append(Row(name, f"scalar s={step}", "-", 0, original / model.ByteSize(), math.nan, math.nan, math.nan,
                        math.nan, math.nan, 0.0, math.nan, math.nan, fid))
        log(f"  scalar {step}: ratio {rows[-1].ratio:.2f} {fid}")
    jobs = [(v, m, plan["samples"]) for v in (variants or plan["variants"]) for m in modes]
    if sweep:
        first = next(iter(plan["variants"]))
        jobs += [(first, modes[-1], n) for n in plan["sweep"] if n != plan["samples"]]
    for label, mode, samples in jobs:
        blocks, k = plan["variants"][label]
        cfg = PQConfig(block=blocks, k=k, iterations=10)
        calibrated, refine, rounds = MODES[mode]
        batches = zm.calibration(samples) if calibrated else []
        fit, seconds, peak = fit_in_child(src, cfg, samples, calibrated, refine, rounds, plan["max_rows"], batches)
        model, report = pq_model.compress(onnx.load(str(src)), fit, CompressConfig(), cfg)
        coded, raw, ent, weights, idx_coded, idx_raw = index_costs(fit, "brotli")
        fid = evaluate(model, feeds, reference, zm)
        pq_bytes = sum(t.blob_bytes for t in report.tensors if t.name in fit.fits)
        all_w = sum(math.prod(t.shape) for t in report.tensors)
        blob_overhead = pq_bytes - coded  # headers, shapes, params fixed fields
        rows.append(Row(name, label, mode, samples if calibrated else 0, original / model.ByteSize(),
                        8 * pq_bytes / weights, 8 * (raw + blob_overhead) / weights, 8 * (ent + blob_overhead) / weights,
                        8 * idx_coded / weights, 8 * idx_raw / weights, weights / all_w, seconds, peak, fid))
        log(f"  pq {label} {mode} n={samples}: ratio {rows[-1].ratio:.2f} bpw {rows[-1].pq_bpw:.3f} "
            f"(raw {rows[-1].pq_bpw_raw:.3f}, H {rows[-1].index_entropy_bpw:.3f}) fit {seconds:.1f}s peak {peak:.0f}MB {fid}")
    return rows


def at_target(name: str, rows: list[Row]) -> list[str]:
    """The highest file ratio meeting the zoo model's fidelity target, for pq and for scalar."""
    target = getattr(zoo.get(name), "target", None)
    if target is None:
        return []
    lines = [f"Target: {target.metric} >= {target.threshold}."]
    for kind, pick in (("pq", lambda r: r.mode != "-"), ("scalar", lambda r: r.mode == "-")):
        ok = [r for r in rows if pick(r) and r.fidelity.get(target.metric, -math.inf) >= target.threshold]
        best = max(ok, key=lambda r: r.ratio, default=None)
        lines.append(f"- best {kind} meeting it: " + ("none of the variants tried" if best is None else
                     f"{best.variant} {best.mode if best.mode != '-' else ''} -> ratio {best.ratio:.2f} "
                     f"({target.metric} {best.fidelity[target.metric]:.4f})"))
    return lines


def markdown(name: str, rows: list[Row], commands: list[str]) -> str:
    keys = sorted({k for r in rows for k in r.fidelity})
    out = [f"## {name}", "", "Made by " + ", then ".join(f"`{c}`" for c in commands) + ".", "",
           "| variant | fit | calib samples | file ratio | pq bits/w | pq bits/w, raw idx | saved | "
           "idx bits/w | idx bits/w raw | idx saved | H0 bits/w | pq share | fit s | peak MB | " + " | ".join(keys) + " |",
           "|---" * (14 + len(keys)) + "|"]

    def f(x: float, spec: str = ".3f") -> str:
        return "-" if x != x else format(x, spec)

    for r in rows:
        saved = 100 * (1 - r.pq_bpw / r.pq_bpw_raw)
        idx_saved = 100 * (1 - r.idx_bpw / r.idx_bpw_raw)
        out.append(f"| {r.variant} | {r.mode} | {r.samples or '-'} | {r.ratio:.2f} | {f(r.pq_bpw)} | {f(r.pq_bpw_raw)} | "
                   f"{f(saved, '.1f')}% | {f(r.idx_bpw)} | {f(r.idx_bpw_raw)} | {f(idx_saved, '.1f')}% | "
                   f"{f(r.index_entropy_bpw)} | {r.pq_share:.2f} | {f(r.fit_s, '.1f')} | {f(r.peak_mb, '.0f')} | "
                   + " | ".join(f(r.fidelity.get(k, math.nan), ".4f") for k in keys) + " |")
    return "\n".join(out + [""] + at_target(name, rows)).replace("-%", "-") + "\n"


def load_rows(out: Path, name: str) -> list[Row]:
    path = out / f"pq_{name}.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    rows = data["rows"] if isinstance(data, dict) else data  # a bare list: the first format
    return [Row(**{k: (math.nan if v is None else v) for k, v in d.items()}) for d in rows]


def load_commands(out: Path, name: str) -> list[str]:
    path = out / f"pq_{name}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    return data.get("commands", []) if isinstance(data, dict) else [f"{_CMD} {name}"]


def rel(path: Path) -> str:
    """``path`` as the recorded commands name it: relative to the checkout root when inside it."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def run_command(args, name: str) -> str:
    """The command of this run for one model, as recorded in its pq_<model>.json."""
    cmd = []
    if args.modes != DEFAULT_MODES:
        cmd += ["--modes", args.modes]
    if args.variants:
        cmd += ["--variants", args.variants]
    if args.no_sweep:
        cmd += ["--no-sweep"]
    if Path(args.out).resolve() != DEFAULT_OUT.resolve():
        cmd += ["--out", rel(args.out)]
    return f"{_CMD} {shlex.join([name] + cmd)}"


def header(out: Path) -> str:
    """The line under pq.md's title: the command that rewrites it."""
    names = " ".join(PLANS)
    where = "" if out.resolve() == DEFAULT_OUT.resolve() else f" --out {rel(out)}"
    return (f"Regenerate: `{_CMD}{where} {names}` (from the checkout root; needs the zoo: `make zoo`; hours: "
            "each model's section lists the runs that made its rows; "
            f"`{_CMD}{where} --from-json {names}` rebuilds this file from pq_<model>.json).")


def introduction(out: Path) -> str:
    """The hand-written part of pq.md: its title and everything above the first model section,
    without the Regenerate line (rewritten by header())."""
    path = out / "pq.md"
    text = path.read_text() if path.exists() else "# Product quantization (quantizer 5, `pq`)\n"
    lines = text.splitlines()
    end = next((i for i, line in enumerate(lines) if line.removeprefix("## ") in PLANS), len(lines))
    body = "\n".join(line for line in lines[1:end] if not line.startswith("Regenerate: ")).strip("\n")
    return "\n\n".join([lines[0], header(out), body]) + "\n\n"


def write_markdown(out: Path) -> None:
    """pq.md = its introduction (kept) + one section per model with results (json order)."""
    parts = [introduction(out)]
    for name in PLANS:
        path = out / f"pq_{name}.json"
        if path.exists():
            rows = load_rows(out, name)
            order = {"-": 0, "kmeans": 1, "em": 2, "em+refine": 3, "em+refine+reassign": 4}
            rows.sort(key=lambda r: (r.mode != "-", r.variant, r.samples not in (0, PLANS[name]["samples"]),
                                     order.get(r.mode, 9), r.samples))
            parts.append(markdown(name, rows, load_commands(out, name)))
    (out / "pq.md").write_text("\n".join(parts))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", choices=sorted(PLANS))
    ap.add_argument("--modes", default=DEFAULT_MODES)
    ap.add_argument("--variants", default=None, help="comma-separated variant labels (default: all of the model's)")
    ap.add_argument("--no-sweep", action="store_true", help="skip the calibration-size sweep")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder of pq.md and pq_<model>.json (default: docs/results)")
    ap.add_argument("--from-json", action="store_true", help="only rebuild pq.md from pq_<model>.json")
    args = ap.parse_args(argv)
    for name in args.models if not args.from_json else []:
        rows = run_model(name, args.modes.split(","), args.variants.split(",") if args.variants else None, not args.no_sweep)
        merged = {(r.variant, r.mode, r.samples): r for r in load_rows(args.out, name) + rows}  # new rows replace old
        save = {"commands": load_commands(args.out, name) + [run_command(args, name)], "rows": [asdict(r) for r in merged.values()]}
        (args.out / f"pq_{name}.json").write_text(json.dumps(save, indent=1) + "\n")
    write_markdown(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
