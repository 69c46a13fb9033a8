#!/usr/bin/env python3
"""Ablation of the pq fit target on Fashion-MNIST (d9, k256, 128 calibration images): toward the layer's
own weights ||Xq (W - W_hat)|| vs toward the original layer outputs ||Xq W_hat - Xf W||, without / with
centroid fine-tuning; evaluated on the first 3000 test images. Prints one line per variant
(docs/research/pq2.md quotes them). From the checkout root, no arguments:

    python tools/research/pq2_target_ablation.py
"""
import argparse, sys, time, numpy as np, onnx, onnxruntime as ort
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))  # the checkout
from models import zoo
from onnx_udc.fit import pq_model
from onnx_udc.fit.calib import CalibrationSet
from onnx_udc import CompressConfig, decompress_model
from onnx_udc.quantizers.pq import PQConfig
argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
zm = zoo.get("fmnist"); src = zm.onnx_path(); m = onnx.load(str(src))
feeds = zm.feeds(3000)
ref = [ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, f) for f in feeds]
def ev(cm):
    s = ort.InferenceSession(decompress_model(cm).SerializeToString(), providers=["CPUExecutionProvider"])
    f = zm.fidelity(ref, [s.run(None, x) for x in feeds]); return {k: round(float(v), 4) for k, v in f.items() if k in ("accuracy","top1_agreement")}
cal = CalibrationSet(zm.calibration(128), False, "zoo")
cfg = PQConfig(block={"conv3x3": 9, "conv1x1": 4, "conv": 8, "matmul": 4}, k=256, iterations=10)
for target in ["weights", "output"]:
    for refine in [0, 20]:
        t = time.time()
        fit = pq_model.fit_model(m, cfg, cal, refine=refine, max_rows=1024, target=target)
        cm, rep = pq_model.compress(m, fit, CompressConfig(), cfg)
        print(target, refine, f"{src.stat().st_size / cm.ByteSize():.2f}", ev(cm), f"{time.time()-t:.1f}s", flush=True)
