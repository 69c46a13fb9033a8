"""Measure the default (target-driven) and fixed-step onnx-udc compressions of zoo entries.

    python -m models.zoo2_measure [names...] [--out out/zoo2]

For each entry: writes <out>/<name>/model.onnx (a copy of the original) and calib.npz
(from ``calibration()``: one array per input, samples on axis 0; inputs the same for
every feed stored whole), runs

    onnx-udc compress <out>/<name>/model.onnx -o <out>/<name>/default.onnx --calib <out>/<name>/calib.npz
    onnx-udc compress <out>/<name>/model.onnx -o <out>/<name>/step0.2.onnx --step-rel 0.2

and evaluates every file written with the entry's ``fidelity()`` on ``feeds()`` (through
``run()``, so a stateful entry carries its state). Entries whose calibration feeds cannot
be stacked into one .npz (``vad_silero``: a recurrent state per feed) also go through the
Python API with the feed dicts themselves. Results: <out>/<name>/result.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("onnx-udc"))


def _pad_tokens(values: list[np.ndarray]) -> list[np.ndarray]:
    """Integer inputs of different widths (token batches each padded to their own longest
    sentence) zero-padded at the end of axis 1, so that they stack on axis 0."""
    if values[0].ndim < 2 or values[0].dtype.kind not in "iu":
        return values
    width = max(v.shape[1] for v in values)
    return [np.pad(v, [(0, 0), (0, width - v.shape[1])] + [(0, 0)] * (v.ndim - 2)) for v in values]


def write_npz(batches: list[dict[str, np.ndarray]], path: Path) -> dict[str, list[int]]:
    """Stack calibration feeds along axis 0 (token inputs zero-padded to one width, attention
    mask 0 there); an input equal in every feed is stored once, whole."""
    arrays = {}
    rows = [len(next(iter(b.values()))) for b in batches]
    for key in batches[0]:
        values = [b[key] for b in batches]
        same = all(v.shape == values[0].shape and np.array_equal(v, values[0]) for v in values)
        if same and (values[0].ndim == 0 or len(batches) > 1):
            arrays[key] = values[0]
        elif all(v.ndim and len(v) == r for v, r in zip(values, rows)):
            arrays[key] = np.concatenate(_pad_tokens(values))
        else:  # no sample axis and not the same in every feed (a recurrent state [2, B, H]): whole feeds
            return _write_feeds(batches, path)
    np.savez(path, **arrays)
    return {k: list(v.shape) for k, v in arrays.items()}


def _write_feeds(batches: list[dict[str, np.ndarray]], path: Path) -> dict[str, list[int]]:
    """A sequence of whole feeds (onnx-udc's .npz form for stateful models): every varying input
    stacked on a new axis 0, an input the same in every feed stored once at its own rank."""
    arrays = {}
    for key in batches[0]:
        values = [b[key] for b in batches]
        same = all(v.shape == values[0].shape and np.array_equal(v, values[0]) for v in values)
        arrays[key] = values[0] if same else np.stack(values)
    np.savez(path, **arrays)
    return {k: list(v.shape) for k, v in arrays.items()}


def evaluate(zoo_model, path: Path, reference) -> dict[str, float]:
    from onnx_udc import InferenceSession

    session = InferenceSession(path)
    return zoo_model.fidelity(reference, zoo_model.run(session, zoo_model.feeds()))


def cli(args: list[str], log) -> dict:
    start = time.perf_counter()
    done = subprocess.run([CLI, *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    text = (done.stdout + done.stderr).strip()
    log(f"$ onnx-udc {' '.join(args)}\n  exit {done.returncode} in {seconds:.1f} s\n" + "\n".join("  | " + l for l in text.splitlines()[-25:]))
    return {"command": "onnx-udc " + " ".join(args), "exit": done.returncode, "seconds": round(seconds, 1),
            "output": text.splitlines()[-40:]}


def rel(p: Path) -> str:
    try:
        return str(p.relative_to(ROOT))
    except ValueError:
        return str(p)


def measure(name: str, out: Path, log=print, samples: int = 10**6) -> dict:
    """One entry (module docstring), on ``calibration(samples)``."""
    import onnxruntime as ort

    from models import zoo

    m = zoo.get(name)
    d = out / name
    d.mkdir(parents=True, exist_ok=True)
    src = d / "model.onnx"
    shutil.copyfile(m.onnx_path(), src)
    original = src.stat().st_size
    calib = m.calibration(samples)
    shapes = write_npz(calib, d / "calib.npz")
    base = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    reference = m.run(base, m.feeds())
    result = {"model": name, "original_bytes": original, "calib_npz": shapes,
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
    if name == "vad_silero":
        result["runs"]["api_default"] = api_default(m, src, d, calib, reference, log)
    (d / "result.json").write_text(json.dumps(result, indent=1, default=float))
    return result


def api_default(m, src: Path, d: Path, calib, reference, log) -> dict:
    """The default target through the Python API, on the calibration feed dicts as they are."""
    import onnx

    from onnx_udc.errors import UdcError
    from onnx_udc.fit.allocate import Target
    from onnx_udc.fit.fidelity import default_target
    from onnx_udc.graph.modelio import save_model
    from onnx_udc.pipeline import CompressSpec, compress

    proto = onnx.load(str(src))
    kind, value, why = default_target(proto)
    spec = CompressSpec(target=Target(kind, float(value)), calib=calib, calib_samples=sum(len(b["input"]) for b in calib))
    run = {"command": f"compress(model, CompressSpec(target=Target({kind!r}, {value}), calib=<{len(calib)} feed dicts>))",
           "target": f"{kind} {value}", "why": why}
    start = time.perf_counter()
    try:
        res = compress(proto, spec, log=lambda msg: log("  api: " + str(msg)))
    except UdcError as exc:
        run.update(error=f"{type(exc).__name__}: {exc}", seconds=round(time.perf_counter() - start, 1))
        log(f"  api: {run['error']}")
        return run
    run["seconds"] = round(time.perf_counter() - start, 1)
    path = d / "api_default.onnx"
    save_model(res.model, path)
    run["bytes"] = path.stat().st_size
    run["ratio"] = src.stat().st_size / run["bytes"]
    run["verification"] = repr(res.verification)
    run["fidelity"] = evaluate(m, path, reference)
    log(f"  api: ratio {run['ratio']:.2f}x {run['verification']}\n  api: {run['fidelity']}")
    return run


def main(argv: list[str]) -> None:
    out = ROOT / "out" / "zoo2"
    if "--out" in argv:
        i = argv.index("--out")
        out = Path(argv[i + 1]).resolve()
        argv = argv[:i] + argv[i + 2:]
    for name in argv or ["ocr_cls", "filetype_magika", "det_nudenet", "vad_silero"]:
        print(f"== {name}", flush=True)
        measure(name, out, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main(sys.argv[1:])
