#!/usr/bin/env python3
"""Decode throughput of the C++ core, one core, for every lossy quantizer x every coder.

    .venv/bin/python tools/bench_decode.py --out docs/bench_decode.md

Makes one blob per (registered lossy quantizer, registered coder, step) from the same
weights (--numel of them, rows of Gaussian weights with per-row scales, like a layer),
then runs runtime/build/udc_bench_decode on all blobs: the coder alone, the whole decode
(DecodeOptions max_threads = 1) and a memcpy of the decoded bytes, timed in the same run.
Quantizers and coders come from the registries, so new ones show up by themselves.
"""

from __future__ import annotations

import argparse
import csv
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STEPS = (("default", None), ("fine", 0.02))


def weights(numel: int, seed: int = 0) -> np.ndarray:
    """float32 [rows, 1024]: Gaussian rows with log-normal scales (a layer's weights)."""
    rng = np.random.default_rng(seed)
    rows = max(1, numel // 1024)
    scales = np.exp(rng.normal(0.0, 0.5, size=(rows, 1)))
    return (rng.standard_normal((rows, 1024)) * scales * 0.05).astype(np.float32)


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
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "bench_decode.md")
    parser.add_argument("--numel", type=int, default=1 << 22)
    parser.add_argument("--bench", type=Path, default=ROOT / "runtime" / "build" / "udc_bench_decode")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=0.3)
    args = parser.parse_args(argv)

    from onnx_udc import coders, quantizers
    from onnx_udc.codec import encode_tensor
    from onnx_udc.quantizers.base import StepConfig

    if not args.bench.is_file():
        raise SystemExit(f"{args.bench} not built: cmake --build runtime/build")
    w = weights(args.numel)
    lossy = [n for n in quantizers.names() if not quantizers.by_name(n).lossless]
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
        cmd = [str(args.bench), "--repeat", str(args.repeat), "--min-seconds", str(args.min_seconds)]
        run = subprocess.run(cmd + [str(j[4]) for j in jobs], check=True, capture_output=True, text=True)
    rows = list(csv.DictReader(run.stdout.splitlines(), delimiter="\t"))

    out = [
        "# Decode throughput of the C++ core (one core)",
        "",
        "    .venv/bin/python tools/bench_decode.py" + (f" --numel {args.numel}" if args.numel != 1 << 22 else ""),
        "",
        f"Machine: {cpu_name()}, {platform.system()} {platform.machine()}. Weights: {w.size} float32 "
        f"({w.shape[0]} rows x {w.shape[1]}, Gaussian with log-normal row scales), one blob per "
        "registered lossy quantizer, coder and step. `udc_bench_decode` times, single-threaded "
        "(DecodeOptions max_threads = 1), best of "
        f"{args.repeat} rounds of at least {args.min_seconds} s each: the coder alone (payload -> "
        "planar symbol bytes), the whole decode (coder + dequantization into float32) and a memcpy "
        "of the decoded float32 bytes, the baseline measured in the same run. M/s is million "
        "weights per second; `x memcpy` is the decode time over the memcpy time; H0 the order-0 entropy "
        "of the symbols and bits/weight the payload's. The machine is shared (2 cores, other jobs "
        "running), so absolute rates are noisy; the memcpy column is the same-run baseline.",
        "",
        "| quantizer | step_rel | width | H0 | coder | bits/weight | coder M/s | decode M/s | memcpy M/s | decode x memcpy |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (qname, step_name, step_rel, cname, _, result), row in zip(jobs, rows):
        n = int(row["numel"])
        def rate(ns: str) -> str:  # million weights per second; store's coder only points into the payload
            return f"{n / float(ns) * 1e3:.1f}" if float(ns) >= 1000 else "no copy"

        bpw = 8.0 * result.header.payload_len / n
        out.append(f"| {qname} | {step_rel} | {row['width']} | {result.entropy_bits:.3f} | {cname} | {bpw:.3f} | {rate(row['coder_ns'])} | "
                   f"{rate(row['decode_ns'])} | {float(n) / float(row['memcpy_ns']) * 1e3:.0f} | "
                   f"{float(row['decode_ns']) / float(row['memcpy_ns']):.0f} |")
    out.append("")
    args.out.write_text("\n".join(out))
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
