#!/usr/bin/env python3
"""What each encoder step buys: the default command at a zoo model's target with plain
rounding, + output-aware (error-fed) indices, + RDOQ, + distillation.

    python tools/encoder_steps.py --models fmnist,ocr_cls,efficientnet_lite0 --out docs/results/encoder_steps.md

For each zoo model the pipeline the CLI's default runs (`onnx-udc compress M -o out --calib C`
with the zoo's stated target where it has one, else the target chosen from the outputs;
pipeline.compress with --quantizer auto's methods), four times:

    plain rounding        methods without "feedback" (step quantizers and pq), distillation off
    + output-aware        the default methods (error-fed scalar indices, fit.feedback), distillation off
    + RDOQ                as above with the rate-distortion-optimised twins of every error-fed
                          candidate (fit.candidates.RDO_LAMBDA = 0.1 squared steps per bit;
                          off in the product)
    + distillation        the default: distillation of what the decoder reads after a held-out
                          miss (--distill auto; "did not run" when no plan missed)

Each runs in a forked child (models.bench._measured: wall seconds and the peak RSS it added);
the result is scored on the zoo's evaluation inputs (never the calibration samples that
fitted it, except ResNet-20's 2.6% overlap stated in RESULTS.md) against the original model,
with the zoo's metric. A run that misses its held-out check is refused by the pipeline
(FidelityError) and shown as such.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RDOQ_LAMBDA = 0.1
STEPS = ("plain rounding", "+ output-aware indices", "+ RDOQ", "+ distillation")
DEFAULT_MODELS = ("fmnist", "ocr_cls", "vad_silero", "efficientnet_lite0")


def _job(proto, target, calib, step: str, seed: int):
    """The compression of one step -> (model or None, info); runs in the child."""
    from onnx_udc import CompressConfig
    from onnx_udc.errors import FidelityError
    from onnx_udc.fit import candidates
    from onnx_udc.pipeline import CompressSpec, compress
    from onnx_udc.pipeline.compress import auto_methods

    methods = auto_methods(target)
    distill = "off"
    if step == "plain rounding":
        methods = tuple(m for m in methods if m != "feedback")
    elif step == "+ RDOQ":
        candidates.RDO_LAMBDA = RDOQ_LAMBDA  # the child's copy of the module only
    elif step == "+ distillation":
        distill = "auto"
    spec = CompressSpec(config=CompressConfig(seed=seed), target=target, calib=calib, methods=methods, distill=distill)
    try:
        res = compress(proto, spec)
    except FidelityError as exc:
        return None, {"missed": " ".join(str(exc).split())}
    counts: dict[str, int] = {}
    for t in (res.allocation.tensors if res.allocation else []):
        key = t.quantizer.split(" ")[0]
        counts[key] = counts.get(key, 0) + 1
    return res.model, {
        "held_out": res.verification.describe() if res.verification else "",
        "methods": counts,
        "distill": None if res.distill is None else {"kept": bool(res.distill.kept), "seconds": res.distill.seconds},
    }


def _outputs(zoo_model, path: Path, feeds):
    import onnx
    import onnxruntime as ort

    from onnx_udc.graph import decompress_model

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if path.name.endswith(".udc.onnx"):
        proto = decompress_model(onnx.load(str(path)))
        session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    else:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return zoo_model.run(session, feeds)


def run_model(name: str, samples: int, seed: int, steps, log=print) -> dict:
    import onnx

    from models import bench, zoo
    from onnx_udc.fit.allocate import Target
    from onnx_udc.fit.fidelity import default_target

    zm = zoo.get(name)
    src = Path(zm.onnx_path())
    proto = onnx.load(str(src))
    stated = getattr(getattr(zm, "target", None), "stated", None)
    if stated is not None:
        target, why = Target(*stated), "the zoo's stated target"
    else:
        kind, value, why = default_target(proto)
        target = Target(kind, value)
    calib = zm.calibration(samples)
    feeds = zm.feeds()
    reference = _outputs(zm, src, feeds)
    original = src.stat().st_size + sum(p.stat().st_size for p in src.parent.glob(src.name + ".data"))
    out = {"title": zm.title, "target": target.describe(), "why": why, "zoo_metric": zm.target.metric,
           "zoo_threshold": zm.target.threshold, "original_bytes": original, "steps": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for step in steps:
            path = Path(tmp) / f"{len(out['steps'])}.udc.onnx"
            log(f"{name}: {step} ...")
            seconds, peak, info = bench._measured(lambda step=step: _job(proto, target, calib, step, seed), path)
            row = {"seconds": round(seconds, 1), "peak_mb": round(peak, 0), **info}
            if "missed" not in info:
                size = path.stat().st_size
                metrics = zm.fidelity(reference, _outputs(zm, path, feeds))
                row.update(bytes=size, ratio=original / size, metrics=metrics,
                           value=metrics[zm.target.metric], meets=metrics[zm.target.metric] >= zm.target.threshold)
            out["steps"][step] = row
            log(f"{name}: {step}: " + (f"{row['ratio']:.2f}x, {zm.target.metric} {row['value']:.4f}" if "ratio" in row
                                      else "refused: " + info["missed"][:160]) + f" ({seconds:.0f} s, {peak:.0f} MB)")
    return out


def markdown(results: dict, argv: str, started: str, load: str, commit: str) -> str:
    lines = ["# What each encoder step buys, per zoo model", "",
             f"Regenerate: `python {argv}`. Produced {started} at commit {commit}, 2 cores shared with other jobs "
             f"(load average at the start {load}: the seconds are not comparable between machines or runs, the "
             "ratios and fidelities are deterministic for a given commit). tools/encoder_steps.py's docstring "
             "says what each step is; RDOQ's lambda is "
             f"{RDOQ_LAMBDA} squared steps per bit.", ""]
    for name, r in results.items():
        lines += [f"## {r['title']}", "",
                  f"Target: {r['target']} ({r['why']}); zoo target {r['zoo_metric']} >= {r['zoo_threshold']}; "
                  f"original {r['original_bytes']:,} bytes.", "",
                  "| step | ratio | " + r["zoo_metric"] + " (evaluation) | meets zoo target | held-out check | methods | "
                  "distillation | compress s | peak MB |", "|---|---|---|---|---|---|---|---|---|"]
        for step, row in r["steps"].items():
            if "missed" in row:
                lines.append(f"| {step} | refused | | | {row['missed'][:200]} | | | {row['seconds']} | {row['peak_mb']:.0f} |")
                continue
            meth = ", ".join(f"{k} {v}" for k, v in sorted(row["methods"].items(), key=lambda kv: -kv[1]))
            dist = "-" if step != "+ distillation" else (
                "did not run (no held-out miss)" if row["distill"] is None else
                f"ran {row['distill']['seconds']:.0f} s, {'kept' if row['distill']['kept'] else 'not kept'}")
            lines.append(f"| {step} | {row['ratio']:.2f}x | {row['value']:.4f} | {'yes' if row['meets'] else '**no**'} | "
                         f"{row['held_out']} | {meth} | {dist} | {row['seconds']} | {row['peak_mb']:.0f} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default=",".join(DEFAULT_MODELS))
    ap.add_argument("--samples", type=int, default=256, help="zoo calibration samples (the benchmark's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of: " + ", ".join(STEPS))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    bad = [s for s in steps if s not in STEPS]
    if bad:
        print(f"error: unknown step {bad[0]!r}: choose from {', '.join(STEPS)}", file=sys.stderr)
        return 2
    from models import zoo

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results = {}
    for name in [m for m in args.models.split(",") if m]:
        try:
            results[name] = run_model(name, args.samples, args.seed, steps, log=lambda s: print(s, file=sys.stderr))
        except (zoo.ZooUnavailable, KeyError) as exc:
            print(f"error: {name}: {exc}", file=sys.stderr)
            return 2
        if args.json:  # after every model: a long run keeps what it measured
            args.json.write_text(json.dumps(results, indent=1, default=float))
    import subprocess

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    text = markdown(results, "tools/encoder_steps.py " + " ".join(sys.argv[1:] if argv is None else argv),
                    started, load, commit)
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
