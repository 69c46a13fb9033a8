"""Measure the default and fixed-step onnx-udc compressions of the derived zoo entries
(docs/research/zoo2.md, "Zoo, part 3").

    python -m models.zoo3_measure [minilm_fp16] [efficientnet_lite0_qdq] [--out out/zoo3]

As ``models.zoo2_measure``, with ``calibration(256)`` as the .npz: for each entry it writes
<out>/<name>/{model.onnx,calib.npz}, runs

    onnx-udc compress <out>/<name>/model.onnx -o <out>/<name>/default.onnx --calib <out>/<name>/calib.npz
    onnx-udc compress <out>/<name>/model.onnx -o <out>/<name>/step0.2.onnx --step-rel 0.2

and evaluates every file written with the entry's ``fidelity()`` on ``feeds()`` through
``onnx_udc.InferenceSession``. Token inputs (MiniLM's batches are each padded to their own
longest sentence) are padded with zeros to the longest calibration batch, attention mask 0
there, so that the batches stack on axis 0. Results: <out>/<name>/result.json.
"""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from .zoo2_measure import ROOT, cli, evaluate, rel

ENTRIES = ("minilm_fp16", "efficientnet_lite0_qdq")
CALIB = 256


def stack(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The feeds on axis 0; integer inputs of different widths zero-padded at the end of axis 1."""
    out = {}
    for key in batches[0]:
        values = [b[key] for b in batches]
        width = max(v.shape[1] for v in values) if values[0].ndim >= 2 else None
        if width is not None and values[0].dtype.kind in "iu":
            values = [np.pad(v, [(0, 0), (0, width - v.shape[1])] + [(0, 0)] * (v.ndim - 2)) for v in values]
        out[key] = np.concatenate(values)
    return out


def measure(name: str, out: Path, log=print) -> dict:
    import onnxruntime as ort

    from models import zoo

    importlib.import_module(f"models.{name}")
    m = zoo.get(name)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    src = d / "model.onnx"
    shutil.copyfile(m.onnx_path(), src)
    original = src.stat().st_size
    arrays = stack(m.calibration(CALIB))
    np.savez(d / "calib.npz", **arrays)
    base = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    reference = m.run(base, m.feeds())
    result = {"model": name, "original_bytes": original, "calib_npz": {k: list(v.shape) for k, v in arrays.items()},
              "self": m.fidelity(reference, reference), "target": repr(m.target), "runs": {}}
    for key, extra in (("default", ["--calib", rel(d / "calib.npz")]), ("step0.2", ["--step-rel", "0.2"])):
        target = d / f"{key}.onnx"
        target.unlink(missing_ok=True)
        run = cli(["compress", rel(src), "-o", rel(target), *extra], log)
        if target.exists():
            run["bytes"] = target.stat().st_size
            run["ratio"] = original / run["bytes"]
            run["fidelity"] = evaluate(m, target, reference)
            run["meets_target"] = bool(run["fidelity"][m.target.metric] >= m.target.threshold)
            log(f"  ratio {run['ratio']:.2f}x, {m.primary} {run['fidelity'][m.primary]:.4f}"
                f" (target {m.target.metric} >= {m.target.threshold}: {'meets' if run['meets_target'] else 'misses'}):"
                f" {run['fidelity']}")
        result["runs"][key] = run
    (d / "result.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def main(argv: list[str]) -> None:
    out = ROOT / "out" / "zoo3"
    if "--out" in argv:
        i = argv.index("--out")
        out = Path(argv[i + 1]).resolve()
        argv = argv[:i] + argv[i + 2:]
    for name in argv or ENTRIES:
        print(f"== {name}", flush=True)
        measure(name, out, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main(sys.argv[1:])
