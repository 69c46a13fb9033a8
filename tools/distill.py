"""Distil a compressed model's decoder parameters toward the original model, end to end.

    .venv/bin/python tools/distill.py ORIGINAL.onnx COMPRESSED.onnx --calib C.npz -o OUT.onnx
        [--steps 300] [--lr 1e-3] [--loss auto] [--batch 64] [--table-budget 0.05] [--seed 0]
        [--fmnist-eval 512]   accuracy of both models on the bundled Fashion-MNIST test images
                              from this index on (the images calibration did not use)

The calibration file is split as the compressor splits it (fit.calib.split_holdout: every
4th sample held out): training sees the fit part, the keep-or-not decision and the reported
loss use the held-out part. The written model is checked: every blob decodes with the
Python decoder, and with the C++ one (onnx_udc.native) when the library loads, to the
weights the distillation measured. Needs torch (pip install 'onnx-udc[finetune]').
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _accuracy(model, images, labels) -> float:
    from onnx_udc import InferenceSession

    from models.fashion_mnist.evaluate import predict

    return float((predict(InferenceSession(model.SerializeToString()), images) == labels).mean())


def _check_decoders(result) -> str:
    from onnx_udc.codec import decode_blob, dequantize
    from onnx_udc.graph.rewrite import blob_bytes, decode_nodes

    blobs = {node.output[0]: blob_bytes(init) for node, init in decode_nodes(result.model)}
    try:
        from onnx_udc.native import native_decoder

        native = native_decoder()
    except Exception as exc:  # the library is optional here
        native, why = None, str(exc)
    for name, q in result.quantized.items():
        want = dequantize(q).tobytes()
        if decode_blob(blobs[name]).tobytes() != want:
            raise SystemExit(f"{name}: the Python decoder disagrees with the trained weight")
        if native is not None and native.decode(blobs[name]).tobytes() != want:
            raise SystemExit(f"{name}: the C++ decoder disagrees with the trained weight")
    done = "Python and C++ decoders" if native is not None else f"Python decoder (C++ unavailable: {why})"
    return f"{len(result.quantized)} new blobs decode exactly ({done})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("original")
    ap.add_argument("compressed")
    ap.add_argument("--calib", required=True, help=".npz, one array per model input (samples on axis 0)")
    ap.add_argument("--calib-samples", type=int, default=512)
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--loss", default="auto")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--table-budget", type=float, default=0.05)
    ap.add_argument("--no-steps", action="store_true", help="keep the steps, train centroids / tables only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--fmnist-eval", type=int, default=None, metavar="START")
    args = ap.parse_args(argv)

    import onnx

    from onnx_udc.finetune import DistillError, UnsupportedOpError, distill
    from onnx_udc.fit.calib import load_npz
    from onnx_udc.graph.modelio import proto_size, save_model

    original, compressed = onnx.load(args.original), onnx.load(args.compressed)
    calib = load_npz(args.calib, original, args.calib_samples)
    clock = time.perf_counter()
    try:
        result = distill(original, compressed, calib, steps=args.steps, lr=args.lr, loss=args.loss, batch=args.batch,
                         table_budget=args.table_budget, train_steps=not args.no_steps, seed=args.seed,
                         threads=args.threads, log=print)
    except UnsupportedOpError as exc:
        print(exc.skipped)
        return 0
    except DistillError as exc:
        print(f"distillation failed: {exc}", file=sys.stderr)
        return exc.exit_code
    seconds = time.perf_counter() - clock
    print(f"wall time {seconds:.1f} s; model {proto_size(compressed)} -> {proto_size(result.model)} bytes")
    if result.quantized:
        print(_check_decoders(result))
    save_model(result.model, args.output)
    if args.fmnist_eval is not None:
        from models.fashion_mnist.data import load_test_data

        images, labels = load_test_data()
        images, labels = images[args.fmnist_eval:], labels[args.fmnist_eval:]
        for label, model in (("original", original), ("compressed", compressed), ("distilled", result.model)):
            print(f"accuracy {label}: {_accuracy(model, images, labels):.4f} on test images "
                  f"{args.fmnist_eval}..{args.fmnist_eval + len(labels) - 1}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
