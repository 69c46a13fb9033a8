#!/usr/bin/env python3
"""Ablation of the data-driven codeword tables on one zoo model: per quantizer and step, no table /
tables toward the original layer outputs (data-output) / toward the layer's own weights (data-weights) /
the weights-only table's keys re-solved on the data (table-output). Prints one line per variant
(docs/research/pq2.md quotes them). From the checkout root:

    python tools/research/pq2_tables_ablation.py scalar,e8 1.6 fmnist
"""
import argparse, sys, time, numpy as np, onnx, onnxruntime as ort
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))  # the checkout
from models import zoo
from onnx_udc.fit import tables as codeword_fit
from onnx_udc.fit.calib import CalibrationSet
from onnx_udc import CompressConfig, compress_model, decompress_model
from onnx_udc.quantizers.lattice import LatticeConfig
ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("quantizers", help="comma-separated quantizer names, e.g. scalar,e8")
ap.add_argument("steps", help="comma-separated step_rel values, e.g. 1.6")
ap.add_argument("model", nargs="?", default="fmnist", help="zoo model (default: fmnist)")
args = ap.parse_args()
zm = zoo.get(args.model); src = zm.onnx_path(); m = onnx.load(str(src))
feeds = zm.feeds(2000)
ref = [ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).run(None, f) for f in feeds]
def ev(cm):
    s = ort.InferenceSession(decompress_model(cm).SerializeToString(), providers=["CPUExecutionProvider"])
    f = zm.fidelity(ref, [s.run(None, x) for x in feeds]); return {k: round(float(v), 4) for k, v in f.items()}
cal = CalibrationSet(zm.calibration(128), False, "zoo")
for q in args.quantizers.split(","):
  for s in [float(x) for x in args.steps.split(",")]:
    for refine in ["none", "data-output", "data-weights", "table-output"]:
        cfg = CompressConfig(quantizer=q, scalar=LatticeConfig(step_rel=s, refine=refine.startswith("table")))
        t = time.time()
        if refine != "none":
            keys, target = refine.split("-")
            cm, rep, tab = codeword_fit.compress_refined(m, cfg, cal, max_rows=512, chunk=4, keys=keys, target=target)
            extra = f"entries {sum(l.fit.entries for l in tab.layers)} err {sum(l.fit.error_final for l in tab.layers)/sum(l.fit.error_input for l in tab.layers):.3f}"
        else:
            cm, rep = compress_model(m, cfg); extra = ""
        print(q, s, refine, f"ratio {src.stat().st_size / cm.ByteSize():.2f}", ev(cm), extra, f"{time.time()-t:.1f}s", flush=True)
