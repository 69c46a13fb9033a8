#!/usr/bin/env python3
"""Coders on real models: payload size, encode time and single-thread decode time of every
lossless coder on the same symbols, against brotli quality 11 measured in the same run.

    python tools/bench_coders.py --out docs/results/coders_real.md [MODEL.onnx ...]

Models: the ones given, else every real model this machine has without the zoo build: the
bundled ResNet-20 (models/fashion_mnist) and RapidOCR's three PP-OCR models when
`rapidocr-onnxruntime` is installed (its files only; the package is not imported), plus
the zoo's cached models (models/cache/*/*.onnx) when built. For every tensor `compress`
would quantize (graph.select: float weights through the scalar quantizer at the step,
per-tensor seeds as compress derives them; integer weights raw), each coder codes the same
symbols; every payload is decoded back (the C++ decoder for range and rans) and compared.
Encode time is the coder's call; decode time is the C++ core's whole-blob decode on one
thread (udc_decode_ex, threads = 1: coder + dequantization), the best of 3, with a memcpy
of the decoded bytes timed beside it.
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODERS = ("brotli", "range", "rans")
STEPS = (0.2, 0.05, 0.02)


def default_models() -> list[Path]:
    out = [ROOT / "models" / "fashion_mnist" / "resnet20_fmnist.onnx"]
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec and spec.submodule_search_locations:
        out += sorted((Path(spec.submodule_search_locations[0]) / "models").glob("*.onnx"))
    out += sorted((ROOT / "models" / "cache").glob("*/*.onnx"))
    return out


def tensors(path: Path, step_rel: float):
    """(name, Quantized) for every tensor compress would quantize in one model."""
    import onnx
    from onnx import numpy_helper

    from onnx_udc import codec
    from onnx_udc.encoder import CompressConfig
    from onnx_udc.graph.select import Action, select_sources
    from onnx_udc.quantizers.base import StepConfig

    model = onnx.load(str(path))
    config = CompressConfig(scalar=StepConfig(step_rel=step_rel))
    for src, cand in select_sources(model, config.min_elements):
        if cand.action is Action.KEEP:
            continue
        array = numpy_helper.to_array(src.tensor)
        plan = config.tensor_plan(cand, array)
        yield cand.name, codec.quantize(array, plan.quantizer, plan.config, plan.seed)


def best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(models: list[Path]) -> list[dict]:
    from onnx_udc import codec
    from onnx_udc.native import native_decoder

    dec = native_decoder()
    rows = []
    for path in models:
        for step in STEPS:
            row = {"model": path.stem, "step": step, "weights": 0, "tensors": 0, "memcpy_s": 0.0}
            for c in CODERS:
                row[c] = {"bytes": 0, "enc_s": 0.0, "dec_s": 0.0}
            for _name, q in tensors(path, step):
                row["weights"] += q.header.numel
                row["tensors"] += 1
                ref = codec.dequantize(q)
                row["memcpy_s"] += best_of(lambda: np.copyto(np.empty_like(ref), ref))
                for c in CODERS:
                    t = time.perf_counter()
                    blob = codec.pack(q, c).blob
                    row[c]["enc_s"] += time.perf_counter() - t
                    row[c]["bytes"] += len(blob) - 0  # whole blobs: the header is the same for each coder
                    got = dec.decode(blob, threads=1)
                    if not np.array_equal(got.view(np.uint8), ref.view(np.uint8)):
                        raise SystemExit(f"{path.stem}: {c} did not decode back exactly")
                    row[c]["dec_s"] += best_of(lambda: dec.decode(blob, threads=1))
            rows.append(row)
            print(path.stem, step, {c: row[c]["bytes"] for c in CODERS}, flush=True)
    return rows


def markdown(rows: list[dict], command: str) -> str:
    lines = [
        "# Coders on real models: size, encode and decode speed",
        "",
        f"Regenerate: `{command}` (from the checkout root).",
        "",
        f"Machine: {platform.processor() or platform.machine()}, shared (other jobs running: compare the "
        "ratios of one run, not absolute times). Every tensor `compress` quantizes, at three fixed steps "
        "(step_rel x RMS); bytes are whole blobs; `x brotli` is the size over brotli quality 11's on the "
        "same symbols. Encode M/s: weights per second of the coder call (Python + native); decode M/s: the "
        "C++ core's whole decode (coder + dequantization) on one thread; memcpy M/s: a copy of the decoded "
        "tensors, same run. Every blob was decoded back exactly.",
        "",
        "| model | step | weights | brotli bytes | range x brotli | rans x brotli | brotli enc M/s | range enc M/s | "
        "rans enc M/s | brotli dec M/s | range dec M/s | rans dec M/s | memcpy M/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    tot = {c: 0 for c in CODERS}
    for r in rows:
        n = r["weights"]
        b = r["brotli"]["bytes"]
        for c in CODERS:
            tot[c] += r[c]["bytes"]
        ms = lambda s: f"{n / s / 1e6:.1f}" if s else "-"  # noqa: E731
        lines.append(
            f"| {r['model']} | {r['step']} | {n:,} | {b:,} | {r['range']['bytes'] / b:.4f} | {r['rans']['bytes'] / b:.4f} | "
            f"{ms(r['brotli']['enc_s'])} | {ms(r['range']['enc_s'])} | {ms(r['rans']['enc_s'])} | "
            f"{ms(r['brotli']['dec_s'])} | {ms(r['range']['dec_s'])} | {ms(r['rans']['dec_s'])} | {ms(r['memcpy_s'])} |")
    lines += ["", f"All rows: brotli {tot['brotli']:,} bytes, range {tot['range']:,} "
              f"({tot['range'] / tot['brotli']:.4f} x brotli), rans {tot['rans']:,} ({tot['rans'] / tot['brotli']:.4f} x brotli).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "coders_real.md")
    args = parser.parse_args(argv)
    models = args.models or default_models()
    rows = measure(models)
    command = "python tools/bench_coders.py --out " + (args.out.resolve().relative_to(ROOT).as_posix()
                                                       if args.out.resolve().is_relative_to(ROOT) else str(args.out))
    if args.models:
        command += " " + " ".join(p.name for p in args.models)
    args.out.write_text(markdown(rows, command))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
