#!/usr/bin/env python3
"""Decode throughput of the C++ core, one core, for every lossy quantizer x every coder.

    python tools/bench_decode.py --out docs/results/bench_decode.md

Makes one blob per (registered lossy quantizer, registered coder, step) from the same
weights (--numel of them, rows of Gaussian weights with per-row scales, like a layer),
then runs runtime/build/udc_bench_decode on all blobs: the coder alone, the whole decode
(DecodeOptions max_threads = 1) and a memcpy of the decoded bytes, timed in the same run,
at the SIMD level the CPU has; then once more with UDC_SIMD=scalar (the portable path) for
the blobs that have vector code (scalar and scalar_channel with store or rans). The report
gives each decode as a ratio to memcpy and to brotli's decode of the same tensor.
Quantizers and coders come from the registries, so new ones show up by themselves.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = (("default", None), ("fine", 0.02))
VECTOR_ROWS = {("scalar", "store"), ("scalar", "rans"), ("scalar_channel", "store"), ("scalar_channel", "rans")}
DEFAULT_OUT = ROOT / "docs" / "results" / "bench_decode.md"


def rel(path: Path) -> str:
    """``path`` as the header's command names it: relative to the checkout root when inside it."""
    path = Path(path).resolve()
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)


def regenerate_command(args) -> str:
    """The command that rewrites this report (the first line under its title), from the checkout root."""
    cmd = ["python tools/bench_decode.py", "--out", rel(args.out)]
    for flag, value, default in (("--numel", args.numel, 1 << 22), ("--repeat", args.repeat, 3),
                                 ("--min-seconds", args.min_seconds, 0.3)):
        if value != default:
            cmd += [flag, str(value)]
    if args.bench.resolve() != (ROOT / "runtime" / "build" / "udc_bench_decode").resolve():
        cmd += ["--bench", rel(args.bench)]
    if args.baseline_bench is not None:  # another build, usually another checkout: not named by its path
        inside = args.baseline_bench.resolve().is_relative_to(ROOT)
        cmd += ["--baseline-bench", rel(args.baseline_bench) if inside else "OTHER_BUILD/udc_bench_decode"]
    return " ".join(cmd)


def weights(numel: int, seed: int = 0) -> np.ndarray:
    """float32 [rows, 1024]: Gaussian rows with log-normal scales (a layer's weights)."""
    rng = np.random.default_rng(seed)
    rows = max(1, numel // 1024)
    scales = np.exp(rng.normal(0.0, 0.5, size=(rows, 1)))
    return (rng.standard_normal((rows, 1024)) * scales * 0.05).astype(np.float32)


def takes_step(qname: str, w: np.ndarray) -> bool:
    """Whether the quantizer is configured by a step (pq takes a fitted codebook instead)."""
    from onnx_udc.errors import ConfigError
    from onnx_udc import quantizers
    from onnx_udc.quantizers.base import StepConfig

    try:
        quantizers.by_name(qname).encode(w[:1], StepConfig(), 1)
    except ConfigError:
        return False
    return True


def forced_range_blob(w: np.ndarray, qname: str, config, period: int, variant: int, path: Path):
    """A blob whose range payload has the given context period and header variant (FORMAT.md
    5.2), whichever the encoder would pick: the decode speed of each variant."""
    from onnx_udc import quantizers
    from onnx_udc.codec import EncodeResult, symbol_entropy
    from onnx_udc.format import BlobHeader, CoderId, DType, pack_blob, parse_blob
    from onnx_udc.native import native_range

    q = quantizers.by_name(qname)
    encoded = q.encode(w, config, 1)
    payload = native_range().encode(encoded.symbols, encoded.symbol_width, period, variant)
    header = BlobHeader(quantizer=q.id, coder=CoderId.RANGE, dtype=DType.from_numpy(w.dtype), shape=w.shape,
                        symbol_width=encoded.symbol_width, step=encoded.step, seed=encoded.seed, params=encoded.params)
    blob = pack_blob(header, payload)
    path.write_bytes(blob)
    return path, EncodeResult(blob=blob, header=parse_blob(blob)[0], entropy_bits=symbol_entropy(encoded.symbols))


def fmt_load(load: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in load)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the report (default: docs/results/bench_decode.md)")
    parser.add_argument("--numel", type=int, default=1 << 22)
    parser.add_argument("--bench", type=Path, default=ROOT / "runtime" / "build" / "udc_bench_decode")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=0.3)
    parser.add_argument("--baseline-bench", type=Path, default=None,
                        help="a udc_bench_decode of another build (e.g. the main branch's): its range "
                             "decode time is measured in the same run and reported as a ratio")
    args = parser.parse_args(argv)

    from onnx_udc import coders, quantizers
    from onnx_udc.codec import encode_tensor
    from onnx_udc.quantizers.base import StepConfig

    if not args.bench.is_file():
        raise SystemExit(f"{args.bench} not built: cmake --build runtime/build")
    w = weights(args.numel)
    lossy = [n for n in quantizers.names() if not quantizers.by_name(n).lossless and takes_step(n, w)]
    jobs = []
    with tempfile.TemporaryDirectory() as tmp:
        for qname in lossy:
            for step_name, step_rel in STEPS:
                config = StepConfig() if step_rel is None else StepConfig(step_rel=step_rel)
                for cname in coders.names():
                    result = encode_tensor(w, quantizer=qname, coder=cname, config=config, seed=1)
                    path = Path(tmp) / f"{qname}_{step_name}_{cname}.blob"
                    path.write_bytes(result.blob)
                    jobs.append((qname, step_name, config.step_rel, cname, path, result))
                    print(f"encoded {path.name}", file=sys.stderr)
        for qname in lossy:  # range payloads of one given (period, variant), whichever the encoder would pick
            for step_name, step_rel in STEPS:
                config = StepConfig() if step_rel is None else StepConfig(step_rel=step_rel)
                period = quantizers.by_name(qname).encode(w[:1], config, 1).period
                forced = [(period, 1, "range, short header")]
                forced += [(w.shape[1], 1, "range, row period")] if period == 1 else [(period, 2, "range, position models")]
                for p, variant, label in forced:
                    path = Path(tmp) / f"{qname}_{step_name}_range_{p}_{variant}.blob"
                    jobs.append((qname, step_name, config.step_rel, label, *forced_range_blob(w, qname, config, p, variant, path)))
        cmd = [str(args.bench), "--repeat", str(args.repeat), "--min-seconds", str(args.min_seconds)]
        load_before = os.getloadavg()
        run = subprocess.run(cmd + [str(j[4]) for j in jobs], check=True, capture_output=True, text=True)
        vector_jobs = [j for j in jobs if (j[0], j[3]) in VECTOR_ROWS]
        scalar_run = subprocess.run(cmd + [str(j[4]) for j in vector_jobs], check=True, capture_output=True, text=True,
                                    env={**os.environ, "UDC_SIMD": "scalar"})
        scalar_ns = {str(j[4]): float(row["decode_ns"]) for j, row in
                     zip(vector_jobs, csv.DictReader(scalar_run.stdout.splitlines(), delimiter="\t"))}
        load_after = os.getloadavg()
        baseline = {}
        if args.baseline_bench is not None:  # same-run comparison of the range decoder against another build
            legacy = [j for j in jobs if j[3] == "range, short header"]  # bytes an older build decodes too
            for _ in range(2):  # interleaved, best of both
                for bench in (args.baseline_bench, args.bench):
                    r = subprocess.run([str(bench), "--repeat", str(args.repeat), "--min-seconds", str(args.min_seconds)]
                                       + [str(j[4]) for j in legacy], check=True, capture_output=True, text=True)
                    for j, row in zip(legacy, csv.DictReader(r.stdout.splitlines(), delimiter="\t")):
                        key = (str(j[4]), bench == args.bench)
                        baseline[key] = min(baseline.get(key, float("inf")), float(row["coder_ns"]))
    rows = list(csv.DictReader(run.stdout.splitlines(), delimiter="\t"))
    simd = rows[0]["simd"] if rows and "simd" in rows[0] else "unknown"

    out = [
        "# Decode throughput of the C++ core (one core)",
        "",
        f"Regenerate: `{regenerate_command(args)}` (from the checkout root; needs `runtime/build/udc_bench_decode`, "
        "built by `make runtime`).",
        "",
        f"Machine: {cpu_name()}, {platform.system()} {platform.machine()}, SIMD level {simd}; load average "
        f"(1, 5, 15 min) {fmt_load(load_before)} before the run, {fmt_load(load_after)} after it. Weights: {w.size} float32 "
        f"({w.shape[0]} rows x {w.shape[1]}, Gaussian with log-normal row scales), one blob per "
        "registered lossy quantizer, coder and step. `udc_bench_decode` times, single-threaded "
        "(DecodeOptions max_threads = 1), in CPU time of the decoding thread (the machine is shared: "
        "time the thread waited for a core is not counted), best of "
        f"{args.repeat} rounds of at least {args.min_seconds} s each: the coder alone (payload -> "
        "planar symbol bytes), the whole decode (coder + dequantization into float32) and a memcpy "
        "of the decoded float32 bytes, the baseline measured in the same run. M/s is million "
        "weights per second. `memcpy / decode` is the memcpy time over the decode time (1.00: "
        "decodes at memcpy speed); `vs brotli` is brotli's whole decode time of the same quantizer "
        "and step over this row's (above 1: faster than brotli). `scalar path M/s`: the same "
        "whole decode with `UDC_SIMD=scalar` (the portable code, the reference of the vector "
        "paths), measured in the same run, for the rows that have vector code. H0 is the order-0 "
        "entropy of the symbols and bits/weight the payload's. Absolute rates are noisy on a shared "
        "machine; the ratios are the same-run comparisons. "
        "`range` is what the encoder picks (FORMAT.md 5.2: the shortest of its candidates); the "
        "`range, ...` rows force one header variant on the same symbols: the one-byte header "
        "(one model set, the vector period), the row length as period (scalar), a model set per "
        "vector position (lattices).",
        "",
        "| quantizer | step_rel | width | H0 | coder | bits/weight | coder M/s | decode M/s | scalar path M/s | "
        "memcpy M/s | memcpy / decode | vs brotli |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    brotli_ns = {(j[0], j[1]): float(row["decode_ns"]) for j, row in zip(jobs, rows) if j[3] == "brotli"}
    for (qname, step_name, step_rel, cname, path, result), row in zip(jobs, rows):
        n = int(row["numel"])
        def rate(ns: str) -> str:  # million weights per second; store's coder only points into the payload
            return f"{n / float(ns) * 1e3:.1f}" if float(ns) >= 1000 else "no copy"

        bpw = 8.0 * result.header.payload_len / n
        decode_ns, memcpy_ns = float(row["decode_ns"]), float(row["memcpy_ns"])
        scalar = f"{n / scalar_ns[str(path)] * 1e3:.1f}" if str(path) in scalar_ns else "-"
        vs_brotli = brotli_ns.get((qname, step_name))
        out.append(f"| {qname} | {step_rel} | {row['width']} | {result.entropy_bits:.3f} | {cname} | {bpw:.3f} | "
                   f"{rate(row['coder_ns'])} | {rate(row['decode_ns'])} | {scalar} | {n / memcpy_ns * 1e3:.0f} | "
                   f"{memcpy_ns / decode_ns:.3f} | {vs_brotli / decode_ns if vs_brotli else float('nan'):.2f} |")
    out.append("")
    fast = [f"{q} {rel_} {c}" for (q, _, rel_, c, _, _), row in zip(jobs, rows)
            if int(row["numel"]) / float(row["decode_ns"]) * 1e3 >= 300.0]
    out += [f"Whole decode at 300 M weights/s or more on one core in this run: {', '.join(fast) if fast else 'none'}.", ""]
    if baseline:
        out += [
            "Range decoder of this build against `--baseline-bench` (another build, e.g. the main branch's "
            "`runtime/build/udc_bench_decode`), same blobs "
            "(the `range, short header` ones, which both builds decode), same run, interleaved, best of "
            "two: coder time of this build over the baseline's (1.00 = same speed, above 1 = slower).",
            "",
            "| quantizer | step_rel | this build coder M/s | baseline coder M/s | time ratio |",
            "|---|---:|---:|---:|---:|",
        ]
        for qname, _, step_rel, cname, path, result in jobs:
            if cname != "range, short header":
                continue
            n, new_ns, old_ns = result.header.numel, baseline[(str(path), True)], baseline[(str(path), False)]
            out.append(f"| {qname} | {step_rel} | {n / new_ns * 1e3:.1f} | {n / old_ns * 1e3:.1f} | {new_ns / old_ns:.2f} |")
        out.append("")
    args.out.write_text("\n".join(out))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
