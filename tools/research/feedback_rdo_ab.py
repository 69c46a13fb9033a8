#!/usr/bin/env python3
"""The default command on the bundled ResNet-20 with the RDO feedback twins at a given
rate term (fit.candidates.RDO_LAMBDA; 0 = the shipped default, no twins): ratio, test
agreement with the original on 4,000 Fashion-MNIST test images, the held-out check, the
methods the plan chose. The record behind RDO_LAMBDA's comment (issue 14).

    python tools/research/feedback_rdo_ab.py 0 0.05 0.1

One line per lambda on stdout. Measured 2026-12-03 on 2 cores: lam 0: 12.23x, agreement
0.9932; 0.05: 11.93x, 0.9902; 0.1: 11.66x, 0.9918.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

import models.fashion_mnist  # noqa: E402,F401 (registers the zoo entry)
from models import zoo  # noqa: E402
from onnx_udc import CompressConfig, InferenceSession  # noqa: E402
from onnx_udc.fit import candidates  # noqa: E402
from onnx_udc.fit.allocate import Target  # noqa: E402
from onnx_udc.pipeline import CompressSpec, compress  # noqa: E402
from onnx_udc.pipeline.compress import auto_methods  # noqa: E402


def run(lam: float) -> str:
    candidates.RDO_LAMBDA = lam
    entry = zoo.get("fmnist")
    proto = onnx.load(str(entry.onnx_path()))
    target = Target("agreement", 0.99)  # the default target of a classifier (fit.fidelity.default_target)
    start = time.time()
    res = compress(proto, CompressSpec(config=CompressConfig(seed=0), target=target, calib=entry.calibration(256),
                                       methods=auto_methods(target)))
    seconds = time.time() - start
    reference = ort.InferenceSession(proto.SerializeToString())
    session = InferenceSession(res.model)
    agree = n = 0
    for feed in entry.feeds(limit=4000):
        a = reference.run(None, feed)[0].argmax(1)
        b = session.run(None, feed)[0].argmax(1)
        agree += int((a == b).sum())
        n += len(a)
    methods: dict[str, int] = {}
    for t in res.allocation.tensors:
        methods[t.quantizer] = methods.get(t.quantizer, 0) + 1
    return (f"lam {lam}: ratio {proto.ByteSize() / len(res.model.SerializeToString()):.2f}x, test agreement "
            f"{agree / n:.4f} ({n} images), held-out {res.verification.describe()}, {seconds:.0f} s, methods {methods}")


if __name__ == "__main__":
    for value in sys.argv[1:] or ["0"]:
        print(run(float(value)), flush=True)
