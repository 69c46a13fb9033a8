#!/usr/bin/env python3
"""`make demo`: compress the bundled Fashion-MNIST model and run both in onnxruntime.

Prints the default-setting result (original vs compressed: file size, ratio, test
accuracy, agreement with the original, through the custom op and the fast loader) and
a small sweep of step sizes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import onnxruntime as ort  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

import onnx_udc  # noqa: E402
from models.fashion_mnist.data import load_test_data, model_path  # noqa: E402
from models.fashion_mnist.evaluate import predict  # noqa: E402
from onnx_udc.graph.modelio import load_model, save_model  # noqa: E402


def compress_to(path: Path, **scalar) -> tuple[Path, float]:
    start = time.perf_counter()
    config = onnx_udc.CompressConfig(scalar=onnx_udc.ScalarConfig(**scalar))
    model, _ = onnx_udc.compress_model(load_model(model_path()), config, inplace=True)
    save_model(model, path)
    return path, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="folder for the compressed files (default: temporary)")
    parser.add_argument("--sweep", type=float, nargs="*", default=[0.1, 0.4, 0.8, 1.2], help="step-rel values")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    out = args.out or Path(tempfile.mkdtemp(prefix="onnx-udc-demo-"))
    out.mkdir(parents=True, exist_ok=True)

    images, labels = load_test_data()
    original = Path(model_path())
    base = ort.InferenceSession(str(original), providers=["CPUExecutionProvider"])
    ref = predict(base, images)
    base_acc = float((ref == labels).mean())
    size0 = original.stat().st_size
    console.print(f"bundled model {original.relative_to(ROOT)}: {size0:,} bytes, "
                  f"test accuracy {100 * base_acc:.2f}% on {len(labels):,} Fashion-MNIST test images")

    default = onnx_udc.ScalarConfig()
    path, seconds = compress_to(out / "resnet20_fmnist.udc.onnx")
    table = Table(title=f"default settings (step-rel {default.step_rel}); compressed in {seconds:.1f} s",
                  title_justify="left")
    for col in ("model", "bytes", "ratio", "accuracy", "agreement"):
        table.add_column(col, justify="left" if col == "model" else "right")
    table.add_row("original fp32", f"{size0:,}", "1.00x", f"{100 * base_acc:.2f}%", "100.00%")
    for label, fast in (("onnx-udc, custom op", False), ("onnx-udc, fast loader", True)):
        pred = predict(onnx_udc.InferenceSession(path, fast=fast), images)
        size = path.stat().st_size
        table.add_row(label, f"{size:,}", f"{size0 / size:.2f}x", f"{100 * (pred == labels).mean():.2f}%",
                      f"{100 * (pred == ref).mean():.2f}%")
    console.print(table)

    sweep = Table(title="step size sweep (fast loader)", title_justify="left")
    for col in ("step-rel", "bytes", "ratio", "accuracy", "delta", "agreement"):
        sweep.add_column(col, justify="right")
    for step_rel in args.sweep:
        p, _ = compress_to(out / f"resnet20_fmnist.s{step_rel}.udc.onnx", step_rel=step_rel)
        pred = predict(onnx_udc.InferenceSession(p), images)
        acc = float((pred == labels).mean())
        sweep.add_row(f"{step_rel:g}", f"{p.stat().st_size:,}", f"{size0 / p.stat().st_size:.2f}x",
                      f"{100 * acc:.2f}%", f"{100 * (acc - base_acc):+.2f}", f"{100 * (pred == ref).mean():.2f}%")
    console.print(sweep)
    target_driven(console, out, images, labels, ref, size0)
    console.print(f"compressed files in {out}")
    return 0


CALIB = 256  # the last test images: the calibration set of the target-driven run, never evaluated


def target_driven(console: Console, out: Path, images, labels, ref, size0: int) -> None:
    """What `onnx-udc compress M -o out --calib C` does: the target chosen from the outputs,
    checked on held-out calibration images; evaluated on the other test images."""
    from onnx_udc.fit.allocate import Target
    from onnx_udc.fit.fidelity import default_target
    from onnx_udc.pipeline import CompressSpec, compress
    from onnx_udc.pipeline.compress import auto_methods

    proto = load_model(model_path())
    kind, value, why = default_target(proto)
    calib = [{"input": images[-CALIB:][i : i + 16]} for i in range(0, CALIB, 16)]
    start = time.perf_counter()
    target = Target(kind, value)
    result = compress(proto, CompressSpec(target=target, calib=calib, calib_samples=CALIB,
                                          methods=auto_methods(target)))
    seconds = time.perf_counter() - start
    path = out / "resnet20_fmnist.default.udc.onnx"
    save_model(result.model, path)
    n = len(labels) - CALIB
    pred = predict(onnx_udc.InferenceSession(path), images[:n])
    table = Table(title=f"target-driven (the CLI's default with --calib: {CALIB} test images, a quarter held out); "
                        f"{seconds:.1f} s", title_justify="left")
    for col in ("target", "held-out check", "bytes", "ratio", f"accuracy ({n:,} other images)", "agreement"):
        table.add_column(col, justify="left" if col in ("target", "held-out check") else "right")
    size = path.stat().st_size
    table.add_row(f"{Target(kind, value).describe()} ({why})", result.verification.describe(), f"{size:,}",
                  f"{size0 / size:.2f}x", f"{100 * (pred == labels[:n]).mean():.2f}%", f"{100 * (pred == ref[:n]).mean():.2f}%")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
