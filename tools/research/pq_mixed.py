#!/usr/bin/env python3
"""Mixed models at the zoo targets: product quantization on the least sensitive layers, the
rest on the scalar quantizer at a rate-allocation plan's steps, optionally data-driven
codeword tables on the scalar layers; and the plan alone, with and without tables.

    docs/results/bench_<model>.json: allocation plan (per-tensor step, sensitivity a_l)
      --> pq layers: Conv / MatMul / Gemm weights pq can take (fit.pq_model.pq_layers), no
          depthwise or first conv, least sensitive first, until --fraction of the weights
      --> fit.pq_model.fit_model(only=those, target="output") on --samples calibration inputs
      --> encoder: pq layers + scalar at the plan's steps (+ fit.tables codeword tables)
      --> ratio and fidelity on the zoo model's evaluation feeds (--limit samples)

Usage, from the checkout root (one JSON line per variant on stdout, appended to
docs/research/pq2_<model>.jsonl, the record docs/research/pq2.md cites):

    python tools/research/pq_mixed.py efficientnet_lite0 --plan "onnx-udc alloc agreement 0.985" \\
        --fraction 0.3 --block conv1x1=4,matmul=4
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout (this file: tools/research/)
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import numpy_helper  # noqa: E402

from models import zoo  # noqa: E402
from onnx_udc.fit import pq_model
from onnx_udc.fit import tables as codeword_fit  # noqa: E402
from onnx_udc.fit.calib import CalibrationSet  # noqa: E402
from onnx_udc.cli import parse_pq_blocks  # noqa: E402
from onnx_udc import CompressConfig, compress_model, decompress_model  # noqa: E402
from onnx_udc.quantizers.pq import PQConfig  # noqa: E402


def plan_of(name: str, variant: str) -> list[dict]:
    data = json.loads((ROOT / "docs" / "results" / f"bench_{name}.json").read_text())
    return data["allocations"][variant]["tensors"]


def pick_layers(model: onnx.ModelProto, cfg: PQConfig, plan: list[dict], fraction: float) -> list[str]:
    """Least sensitive pq-able weights (no depthwise, not the first conv) up to ``fraction`` of the plan's weights."""
    sens = {t["name"]: t["sensitivity"] for t in plan}
    total = sum(math.prod(t["shape"]) for t in plan)
    shapes = {i.name: tuple(i.dims) for i in model.graph.initializer}
    layers = [n for n, _ in pq_model.pq_layers(model, cfg)]
    first_conv = next((n for n in layers if len(shapes[n]) == 4), None)
    ok = [n for n in layers if n in sens and n != first_conv and not (len(shapes[n]) == 4 and shapes[n][1] == 1)]
    ok.sort(key=lambda n: sens[n])
    chosen, weights = [], 0
    for n in ok:
        if weights + math.prod(shapes[n]) > fraction * total:
            continue
        chosen.append(n)
        weights += math.prod(shapes[n])
    return chosen


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--plan", default=None, help="allocation variant name in docs/results/bench_<model>.json")
    ap.add_argument("--allocate", default=None,
                    help="KIND:VALUE (e.g. agreement:0.97): run the allocation here (64 calibration samples, as the bench)")
    ap.add_argument("--fraction", type=float, default=0.0, help="share of the weights given to pq (0: plan only)")
    ap.add_argument("--block", default="conv1x1=4,matmul=4")
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--refine", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--max-rows", type=int, default=256)
    ap.add_argument("--limit", type=int, default=None, help="evaluation samples")
    ap.add_argument("--tables", action="store_true", help="data-driven codeword tables on the scalar layers")
    ap.add_argument("--tables-target", default="output", choices=codeword_fit.TARGETS)
    ap.add_argument("--pq-target", default="output", choices=codeword_fit.TARGETS)
    ap.add_argument("--ridge", type=float, default=codeword_fit.OUTPUT_RIDGE, help="fit.tables.OUTPUT_RIDGE")
    ap.add_argument("--record", type=Path, default=None,
                    help="file the JSON line is appended to (default: docs/research/pq2_<model>.jsonl)")
    args = ap.parse_args(argv)
    codeword_fit.OUTPUT_RIDGE = args.ridge
    zm = zoo.get(args.model)
    src = zm.onnx_path()
    model = onnx.load(str(src))
    if args.allocate:
        from onnx_udc.fit.allocate import Target, allocate

        kind, value = args.allocate.split(":")
        alloc = allocate(onnx.load(str(src)), Target(kind, float(value)), calib=zm.calibration(64),
                         config=CompressConfig(), samples=64)
        plan = alloc.to_dict()["tensors"]
        args.plan = f"allocated here: {kind} {value}"
    else:
        plan = plan_of(args.model, args.plan)
    steps = {t["name"]: t["step"] for t in plan}
    calib = CalibrationSet(zm.calibration(args.samples), False, "zoo")
    t0 = time.perf_counter()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    chosen = []
    config = CompressConfig(steps=steps)
    if args.fraction > 0:
        cfg = PQConfig(block=parse_pq_blocks(args.block), k=args.k, iterations=10)
        chosen = pick_layers(model, cfg, plan, args.fraction)
        fit = pq_model.fit_model(model, cfg, calib, refine=args.refine, rounds=args.rounds, max_rows=args.max_rows,
                                 only=chosen, target=args.pq_target)
        # the fitted layers coded by pq, every other weight at the plan's step (fit.pq_model.compress)
        config = replace(config, quantizer_configs={n: ("pq", replace(cfg, fit=f)) for n, f in fit.fits.items()})
    entries = 0
    if args.tables:  # tables on the scalar layers, fitted with the pq layers decoded below them
        compressed, report, tables = codeword_fit.compress_refined(model, config, calib, max_rows=args.max_rows,
                                                                   chunk=8, target=args.tables_target)
        entries = sum(l.fit.entries for l in tables.layers)
    else:
        compressed, report = compress_model(model, config)
    seconds = time.perf_counter() - t0
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    feeds = zm.feeds(args.limit)
    base = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    ref = [base.run(None, f) for f in feeds]
    sess = ort.InferenceSession(decompress_model(compressed).SerializeToString(), providers=["CPUExecutionProvider"])
    fid = {k: float(v) for k, v in zm.fidelity(ref, [sess.run(None, f) for f in feeds]).items()}
    pq_weights = sum(int(np.prod(numpy_helper.to_array(i).shape)) for i in model.graph.initializer if i.name in chosen)
    row = {"model": args.model, "plan": args.plan, "fraction": args.fraction, "block": args.block, "k": args.k,
           "refine": args.refine, "rounds": args.rounds, "pq_target": args.pq_target, "ridge": args.ridge, "tables": args.tables and args.tables_target, "table_entries": entries,
           "pq_layers": len(chosen), "pq_weights": pq_weights, "samples": calib.samples, "max_rows": args.max_rows,
           "eval_limit": args.limit, "ratio": src.stat().st_size / compressed.ByteSize(), "seconds": seconds,
           "peak_mb": peak, "fidelity": fid, "command": "python tools/research/pq_mixed.py " + shlex.join(argv or sys.argv[1:])}
    print(json.dumps(row), flush=True)
    with (args.record or ROOT / "docs" / "research" / f"pq2_{args.model}.jsonl").open("a") as fh:
        fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
