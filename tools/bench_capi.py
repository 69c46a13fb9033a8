#!/usr/bin/env python3
"""The C/C++ fast path against the original model, in one C++ process (udc_run).

For each model: the original fp32 model (baseline), the compressed model through the C
fast loader (udc_session_create: decoded once, external initializers) and through the
registered custom ops (portable path), each created --create-runs times and run --runs
times in paired rounds (every round runs each session once, rotating the order); the
numbers are medians and the ratios are against the original measured in the same rounds.
Outputs of the fast path are checked against the Python fast loader's (identical bytes).

    python tools/bench_capi.py [--runs 50] [--create-runs 5] [--threads 1]
                               [--markdown docs/results/capi_latency.md]

Models: the bundled ResNet-20 (Fashion-MNIST), a BERT-style encoder with token ids and
mask (models/synthetic.py, 4 layers, hidden 256), and when rapidocr-onnxruntime is
installed (the `zoo` extra) PP-OCRv4 detection (a zoo CNN) and recognition (SVTR, with
attention blocks).
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from models import synthetic  # noqa: E402
from onnx_udc import CompressConfig, InferenceSession, compress_model  # noqa: E402

EXE = ROOT / "runtime" / "build" / "examples" / "udc_run" / "udc_run"


def models() -> list[tuple[str, onnx.ModelProto, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(0)
    out = []
    fmnist = ROOT / "models" / "fashion_mnist"
    images = np.load(fmnist / "test_data.npz")["images"][:8].astype(np.float32) / 255.0
    out.append(("resnet20_fmnist (bundled)", onnx.load(fmnist / "resnet20_fmnist.onnx"),
                {"input": images.reshape(8, 1, 28, 28)}))
    out.append(("tiny_bert (4 x 256, ids + mask)", synthetic.tiny_bert(hidden=256, layers=4, max_len=128),
                synthetic.tiny_bert_inputs(rng, batch=1, seq=128)))
    # The package's files, found without importing it (its __init__ needs OpenCV).
    spec = importlib.util.find_spec("rapidocr_onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        print("skipping the PP-OCRv4 models: pip install rapidocr-onnxruntime==1.4.4 (the zoo extra)", file=sys.stderr)
        return out
    package = Path(list(spec.submodule_search_locations)[0])
    for name, rel, feeds in (
        ("ppocr_det (PP-OCRv4 detection, CNN)", "models/ch_PP-OCRv4_det_infer.onnx",
         {"x": rng.random((1, 3, 480, 480), dtype=np.float32)}),
        ("ppocr_rec (PP-OCRv4 recognition, SVTR)", "models/ch_PP-OCRv4_rec_infer.onnx",
         {"x": rng.random((1, 3, 48, 320), dtype=np.float32)}),
    ):
        if (package / rel).exists():
            out.append((name, onnx.load(package / rel), feeds))
    return out


def parse_table(stdout: str) -> dict[str, dict[str, float]]:
    rows = {}
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("session"))
    for line in lines[start + 1:]:
        parts = line.split()
        if len(parts) != 6 or parts[0] not in ("original", "fast", "portable"):
            break
        rows[parts[0]] = {"create_ms": float(parts[1]), "create_ratio": float(parts[2]),
                          "run_ms": float(parts[3]), "run_ratio": float(parts[4])}
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--create-runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (0: onnxruntime's choice)")
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args()
    if not EXE.exists():
        print(f"{EXE} is missing: run `make runtime`", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for k, (name, model, feeds) in enumerate(models()):
            folder = tmp / str(k)
            (folder / "in").mkdir(parents=True)
            (folder / "out").mkdir()
            compressed, report = compress_model(model, CompressConfig(min_elements=1024))
            onnx.save_model(model, folder / "orig.onnx")
            onnx.save_model(compressed, folder / "m.onnx")
            for key, value in feeds.items():
                np.save(folder / "in" / f"{key}.npy", value)
            r = subprocess.run([str(EXE), str(folder / "m.onnx"), "--inputs", str(folder / "in"), "--original",
                                str(folder / "orig.onnx"), "--load", "both", "--runs", str(args.runs),
                                "--create-runs", str(args.create_runs), "--threads", str(args.threads),
                                "--save-outputs", str(folder / "out")], capture_output=True, text=True)
            if r.returncode:
                print(r.stdout + r.stderr, file=sys.stderr)
                return 1
            table = parse_table(r.stdout)
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            session = InferenceSession(str(folder / "m.onnx"), options)
            names = [o.name for o in session.get_outputs()]
            same = all(np.load(folder / "out" / f"{n}.npy").tobytes() == v.tobytes()
                       for n, v in zip(names, session.run(names, feeds)))
            rows.append((name, len(report.tensors), table, same))
            print(f"{name}: fast run {table['fast']['run_ratio']:.3f}x, create {table['fast']['create_ratio']:.3f}x; "
                  f"portable run {table['portable']['run_ratio']:.3f}x; identical to Python fast loader: {same}")
    lines = [
        "# C/C++ fast path: latency and session creation against the original model",
        "",
        f"Regenerate: `python tools/bench_capi.py --runs {args.runs} --create-runs {args.create_runs} "
        f"--threads {args.threads} --markdown docs/results/capi_latency.md`",
        "",
        f"Measured on {platform.machine()} ({len(__import__('os').sched_getaffinity(0))} CPUs), onnxruntime {ort.__version__}; "
        "one C++ process (runtime/examples/udc_run) per model: medians of paired rounds, ratios against the "
        "original model measured in the same rounds. fast = `udc_session_create` (onnx_udc_ort.h); portable = the "
        "file as it is with the custom ops registered.",
        "",
        "| model | compressed tensors | original run ms | fast run ratio | portable run ratio | original create ms | "
        "fast create ratio | portable create ratio | fast = Python fast loader |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, n, t, same in rows:
        lines.append(f"| {name} | {n} | {t['original']['run_ms']:.3f} | {t['fast']['run_ratio']:.3f} | "
                     f"{t['portable']['run_ratio']:.3f} | {t['original']['create_ms']:.1f} | "
                     f"{t['fast']['create_ratio']:.3f} | {t['portable']['create_ratio']:.3f} | "
                     f"{'identical bytes' if same else 'DIFFERENT'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text)
    return 0 if all(r[3] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
