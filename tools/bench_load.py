#!/usr/bin/env python3
"""Session-creation time and per-run latency of a compressed model, as ratios.

For each model, in one process: the original fp32 model (baseline), the compressed
model through the registered custom op (portable path) and through the fast loader.
Times are medians of repeated measurements; ratios are against the baseline measured
in the same run, so machine noise mostly cancels.

    python tools/bench_load.py [--repeat 7] [--runs 50] [--markdown docs/results/bench_load.md]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto as T  # noqa: E402
from onnx import helper as h  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

import onnx_udc  # noqa: E402
from onnx_udc.graph.modelio import save_model  # noqa: E402


def big_mlp(dim: int = 2048, layers: int = 4) -> onnx.ModelProto:
    """MatMul+Add+Relu stack, dim x dim weights (64 MB at the defaults)."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(layers):
        inits.append(nh.from_array((rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32), f"w{i}"))
        inits.append(nh.from_array(np.zeros(dim, np.float32), f"b{i}"))
        nodes += [h.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]), h.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                  h.make_node("Relu", [f"a{i}"], [f"r{i}"])]
        x = f"r{i}"
    graph = h.make_graph(nodes, "mlp", [h.make_tensor_value_info("x", T.FLOAT, ["N", dim])],
                         [h.make_tensor_value_info(x, T.FLOAT, ["N", dim])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def quiet_options() -> ort.SessionOptions:
    """No spin-waiting: an idle session's threads must not steal the cores of the one being timed."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def interleaved_medians(fns: dict[str, object], repeat: int) -> dict[str, float]:
    """Median seconds of each callable, measured round-robin so machine noise hits all alike."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeat):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def bench(name: str, original: Path, compressed: Path, feeds: dict, repeat: int, runs: int) -> list[dict]:
    makers = {
        "original": lambda: ort.InferenceSession(str(original), quiet_options(), providers=["CPUExecutionProvider"]),
        "custom op": lambda: onnx_udc.InferenceSession(compressed, quiet_options(), fast=False),
        "fast loader": lambda: onnx_udc.InferenceSession(compressed, quiet_options(), fast=True),
    }
    create = interleaved_medians(makers, repeat)
    sessions = {k: make() for k, make in makers.items()}
    for session in sessions.values():
        for _ in range(5):
            session.run(None, feeds)
    latency = interleaved_medians({k: (lambda s=s: s.run(None, feeds)) for k, s in sessions.items()}, runs)
    return [
        {"model": name, "path": k, "create_s": create[k], "run_s": latency[k],
         "create_ratio": create[k] / create["original"], "run_ratio": latency[k] / latency["original"]}
        for k in makers
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7, help="session creations per path")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per path")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the table here (the committed one: docs/results/bench_load.md)")
    args = parser.parse_args(argv)

    from models.fashion_mnist.data import load_test_data, model_path

    work = Path(tempfile.mkdtemp(prefix="onnx-udc-bench-"))
    cases = []
    fm = work / "fmnist.udc.onnx"
    save_model(onnx_udc.compress_model(onnx.load(model_path()))[0], fm)
    cases.append(("resnet20-fmnist", Path(model_path()), fm, {"input": load_test_data()[0][:64]}))
    mlp = big_mlp()
    mlp_path = work / "mlp.onnx"
    save_model(mlp, mlp_path)
    mlp_c = work / "mlp.udc.onnx"
    save_model(onnx_udc.compress_model(mlp, inplace=True)[0], mlp_c)
    cases.append(("mlp-4x2048^2 (64 MB)", mlp_path, mlp_c,
                  {"x": np.random.default_rng(0).standard_normal((16, 2048)).astype(np.float32)}))

    rows = []
    for name, original, compressed, feeds in cases:
        rows += bench(name, original, compressed, feeds, args.repeat, args.runs)

    from models.bench import machine_summary

    command = f"python tools/bench_load.py --repeat {args.repeat} --runs {args.runs}"
    if args.markdown:
        markdown = args.markdown.resolve()
        command += " --markdown " + (markdown.relative_to(ROOT).as_posix() if markdown.is_relative_to(ROOT) else str(markdown))
    lines = [
        "# Load paths: session creation and run latency",
        "",
        f"Regenerate: `{command}` (from the checkout root; `make bench-load` runs it at the default "
        "--repeat and --runs).",
        "",
        f"Measured on {time.strftime('%Y-%m-%d')}. Machine: {machine_summary()}.",
        "",
        f"onnx-udc {onnx_udc.__version__}; medians of {args.repeat} session creations and {args.runs} runs (64 images "
        "for ResNet-20, batch 16 for the MLP), timed round-robin with thread spin-waiting off; ratios against the "
        "original model in the same run. Custom op: the library registered and the file run as is; fast loader: "
        "`onnx_udc.InferenceSession`.",
        "",
        "| model | path | session creation | ratio | run latency | ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['path']} | {1e3 * r['create_s']:.1f} ms | {r['create_ratio']:.2f}x "
                     f"| {1e3 * r['run_s']:.3f} ms | {r['run_ratio']:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
