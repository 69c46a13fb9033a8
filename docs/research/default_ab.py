#!/usr/bin/env python3
"""The default command (target chosen from the outputs, --quantizer auto) on the bundled
ResNet-20, with and without codeword tables as a post-plan stage of the default
(pipeline.compress.AUTO_TABLES): ratio, the held-out check, test accuracy and agreement with
the original on the test images the calibration never saw, wall time.

    python docs/research/default_ab.py reader256 on off    # the 256-image reader of tools/research/feedback_rdo_ab.py
    python docs/research/default_ab.py npz2000 on off      # the CLI's default on an .npz of the last 2,000 test images

reader256: calibration = the last 256 test images as one batch (zoo calibration(256)),
evaluated on the first 9,744. npz2000: calibration = an .npz of the last 2,000 test images
(the default reads its own count from it, spread over the file), evaluated on the first 8,000.
One line per (setup, tables) on stdout.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from models.fashion_mnist.data import load_test_data, model_path  # noqa: E402
from onnx_udc import CompressConfig, InferenceSession  # noqa: E402
from onnx_udc.fit.allocate import Target  # noqa: E402
from onnx_udc.pipeline import CompressSpec, compress  # noqa: E402

pipeline = importlib.import_module("onnx_udc.pipeline.compress")  # the module, not the function


def run(setup: str, tables: bool, distill: str = "auto", label: str = "") -> str:
    """One default compression (codeword-table stage on/off, CompressSpec.distill), scored."""
    pipeline.AUTO_TABLES = tables
    proto = onnx.load(model_path())
    images, labels = load_test_data()
    x = images.astype(np.float32) if images.ndim == 4 else images[:, None].astype(np.float32)
    if setup == "reader256":
        calib, n_eval = [{"input": x[-256:]}], len(x) - 256
    else:
        folder = Path(tempfile.mkdtemp(prefix="udc-ab-"))
        np.savez(folder / "calib.npz", input=x[-2000:])
        calib, n_eval = folder / "calib.npz", len(x) - 2000
    target = Target("agreement", 0.99)  # the default target of a classifier (fit.fidelity.default_target)
    said: list[str] = []
    start = time.time()
    res = compress(proto, CompressSpec(config=CompressConfig(seed=0), target=target, calib=calib,
                                       methods=pipeline.auto_methods(target), distill=distill), log=said.append)
    seconds = time.time() - start
    reference = ort.InferenceSession(proto.SerializeToString())
    session = InferenceSession(res.model)
    agree = right = right0 = 0
    for i in range(0, n_eval, 1000):
        feed = {"input": x[i : min(i + 1000, n_eval)]}
        a = reference.run(None, feed)[0].argmax(1)
        b = session.run(None, feed)[0].argmax(1)
        y = labels[i : min(i + 1000, n_eval)]
        agree += int((a == b).sum())
        right += int((b == y).sum())
        right0 += int((a == y).sum())
    kept = [m for m in said if m.startswith("tables stage" if not label else "distillation")]
    return (f"{setup} {label or ('tables ' + ('on' if tables else 'off'))}: ratio {proto.ByteSize() / res.model.ByteSize():.2f}x "
            f"({res.model.ByteSize():,} B), test agreement {agree / n_eval:.4f}, accuracy {right / n_eval:.4f} "
            f"(original {right0 / n_eval:.4f}) on {n_eval} images, held-out {res.verification.describe()}, "
            f"{seconds:.0f} s{'; ' + kept[-1] if kept else ''}")


if __name__ == "__main__":
    setup, *modes = sys.argv[1:] or ["reader256", "on", "off"]
    for mode in modes or ["on", "off"]:
        print(run(setup, mode == "on"), flush=True)
