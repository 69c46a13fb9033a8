"""Compression speed at defaults without calibration (docs/results/compress_speed.md).

    python tools/bench_compress.py [--dim 4096 --layers 4 | --model m.onnx] [--threads 1,2]
                                   [--repeat 2] [--reference] [--checkout DIR --library SO]

Runs the CLI's fixed-step path, ``onnx-udc compress m.onnx -o out.onnx --step-rel 0.05 -q
--threads T``, in a child process per run and reports, for each worker count:

    weights per CPU-second (the child's user + system time, of main() and of the whole process)
    weights per wall-second
    ratios to a memcpy of the same weight bytes and to brotli at the quality the CLI's brotli
    coder uses (quality 11, lgwin 24), both timed on this process's core in the same run:
    memcpy on all the bytes, brotli on a sample (--brotli-mb) of the float32 weight bytes and
    of the 1-byte quantized symbols (what `--coder brotli` compresses), scaled per weight

and a per-stage breakdown (CPU seconds of the thread that ran each stage, summed over
threads; nested stages indented, inclusive) from timers wrapped around the library's stage
functions in the child. The outputs of every run must be byte-identical (checked: sha256).
``--reference`` adds runs with $ONNX_UDC_REFERENCE_QUANTIZE=1 (the numpy quantizer);
``--checkout DIR`` (+ ``--library``) adds runs of another source tree, e.g. an older commit:
``git archive <commit> onnx_udc | tar -x -C DIR``. The model with its external data comes
from tools/bench_scale.py (``external_mlp``). Prints the load average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import external_mlp  # noqa: E402

STEP_REL = "0.05"

# The child: the package of `path` (past an editable install's import hook) or the installed
# one, the stage timers, the CLI's main(argv); a JSON report at `out`.
CHILD = r"""
import json, sys, threading, time
path, out, profile = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
argv = sys.argv[4:]
if path:
    sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in type(f).__name__ and 'Inplace' not in type(f).__name__]
    sys.path.insert(0, path)
import importlib
import onnx_udc
stages, lock = {}, threading.Lock()

def wrap(module_name, attr, label):
    try:
        owner = importlib.import_module(module_name)
        for part in attr.split(".")[:-1]:
            owner = getattr(owner, part)
        name = attr.split(".")[-1]
        original = getattr(owner, name)
    except (ImportError, AttributeError):
        return
    def timed(*args, **kwargs):
        start = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent = time.thread_time() - start
            with lock:
                calls, total = stages.get(label, (0, 0.0))
                stages[label] = (calls + 1, total + spent)
    setattr(owner, name, timed)
    stages[label] = (0, 0.0)  # the report keeps this order

if profile:
    for module_name, attr, label in [
        ("onnx_udc.graph.modelio", "load_model", "load model (external data deferred)"),
        ("onnx_udc.encoder.stage", "make_plan", "plan (select, per-tensor checks)"),
        ("onnx_udc.encoder.config", "CompressConfig.tensor_plan", "  tensor_plan (finite, negligible)"),
        ("onnx_udc.encoder.stage", "tensor_array", "tensor_array (a tensor's values: memory map)"),
        ("onnx_udc.encoder.backends", "quantize", "quantize (scalar encode)"),
        ("onnx_udc.quantizers.scalar", "_rms", "  rms"),
        ("onnx_udc.quantizers.scalar", "_codes_chunked", "  codes (dither, round, zigzag)"),
        ("onnx_udc.encoder.backends", "quantized_sqnr", "sqnr of the exact decode"),
        ("onnx_udc.encoder.backends", "pack", "pack (coder + blob)"),
        ("onnx_udc.coders.rans_coder", "RansCoder.encode", "  rans encode"),
        ("onnx_udc.coders.base", "ByteCoder.encode", "  byte coder encode (brotli, store)"),
        ("onnx_udc.coders.range_coder", "RangeCoder.encode", "  range encode"),
        ("onnx_udc.codec", "symbol_entropy", "  symbol entropy (report)"),
        ("onnx_udc.codec", "pack_blob", "  blob header + checksum"),
        ("onnx_udc.codec", "parse_blob", "  blob re-parse (header of the result)"),
        ("onnx_udc.encoder.stage", "replace_weights", "swap blobs into the graph"),
        ("onnx_udc.graph.modelio", "save_model", "save model"),
    ]:
        wrap(module_name, attr, label)

from onnx_udc.cli import main
wall, cpu = time.perf_counter(), time.process_time()
try:
    rc = main(argv)
except SystemExit as exc:
    rc = exc.code
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
json.dump({"rc": rc, "wall": wall, "cpu": cpu, "stages": stages}, open(out, "w"))
"""


def float_weights(model_path: Path) -> tuple[int, list[tuple[str, int, int, int]]]:
    """(number of float32 initializer elements, [(name, offset, length, numel)] of the
    external ones) of a model, without reading its data."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    total, external = 0, []
    for t in model.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        numel = math.prod(t.dims)
        total += numel
        info = {e.key: e.value for e in t.external_data}
        if t.data_location == onnx.TensorProto.EXTERNAL:
            external.append((info["location"], int(info.get("offset", 0)), int(info.get("length", 4 * numel)), numel))
    return total, external


def weight_bytes(model_path: Path) -> np.ndarray:
    """The float32 weights of the model, concatenated: float32 [n]."""
    import onnx
    from onnx import numpy_helper

    total, external = float_weights(model_path)
    out = np.empty(total, dtype=np.float32)
    at = 0
    if external:
        for location, offset, length, numel in external:
            out[at : at + numel] = np.fromfile(model_path.parent / location, dtype=np.float32, count=numel, offset=offset)
            at += numel
    model = onnx.load(str(model_path), load_external_data=False)
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and t.data_location != onnx.TensorProto.EXTERNAL:
            a = numpy_helper.to_array(t).reshape(-1)
            out[at : at + a.size] = a
            at += a.size
    return out[:at]


def memcpy_seconds(w: np.ndarray, repeat: int = 3) -> float:
    """CPU seconds of one copy of ``w`` into a buffer already faulted in (best of ``repeat``)."""
    dst = np.empty_like(w)
    np.copyto(dst, w)
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        np.copyto(dst, w)
        best = min(best, time.process_time() - start)
    return best


def brotli_weights_per_s(data: bytes, weights: int) -> float:
    """Weights per CPU-second of brotli at the CLI's quality on ``data`` (``weights`` of them)."""
    import brotli

    from onnx_udc.coders.brotli_coder import LGWIN, QUALITY

    start = time.process_time()
    brotli.compress(data, quality=QUALITY, lgwin=LGWIN)
    return weights / max(time.process_time() - start, 1e-9)


def symbols_sample(w: np.ndarray) -> bytes:
    """The 1-byte symbols the fixed-step quantizer gives ``w`` (one step for the sample; the
    planar bytes `--coder brotli` compresses, clamped to a byte)."""
    from onnx_udc.quantizers.scalar import ScalarQuantizer, ScalarConfig

    enc = ScalarQuantizer().encode(w, ScalarConfig(step_rel=float(STEP_REL)), seed=1)
    return np.minimum(enc.symbols, 255).astype(np.uint8).tobytes()


def sha(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def run_child(src: Path, out: Path, threads: int, *, checkout: Path | None, library: Path | None, env_extra: dict,
              profile: bool, coder: str | None) -> dict:
    report = out.with_suffix(".json")
    argv = ["compress", str(src), "-o", str(out), "--step-rel", STEP_REL, "-q", "--threads", str(threads)]
    if coder:
        argv += ["--coder", coder]
    env = dict(os.environ, **env_extra)
    if library is not None:
        env["ONNX_UDC_LIBRARY"] = str(library)
    for p in out.parent.glob(out.name + "*"):
        p.unlink()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, str(checkout.resolve()) if checkout else "", str(report),
                           "1" if profile else "0", *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode or not report.exists():
        sys.exit(f"compress failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(report.read_text())
    if result["rc"]:
        sys.exit(f"compress exited {result['rc']}:\n{done.stderr[-3000:]}")
    result["process_wall"] = wall
    result["process_cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["sha"] = sha(sorted(p for p in out.parent.glob(out.name + "*") if p.suffix != ".json"))
    return result


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--model", type=Path, default=None, help="an existing model instead of the generated MLP")
    parser.add_argument("--threads", default="1,2", help="comma-separated --threads values")
    parser.add_argument("--repeat", type=int, default=2, help="runs per setting (the fastest CPU time is reported)")
    parser.add_argument("--coder", default=None, help="--coder of the compress command (default: the CLI's default)")
    parser.add_argument("--reference", action="store_true", help="also run with the numpy quantizer (same bytes)")
    parser.add_argument("--checkout", type=Path, default=None, help="also run the onnx_udc package of this folder")
    parser.add_argument("--library", type=Path, default=None, help="ONNX_UDC_LIBRARY for the --checkout runs")
    parser.add_argument("--brotli-mb", type=float, default=4.0, help="MiB of weights brotli is timed on")
    parser.add_argument("--workdir", type=Path, default=None, help="where the model and outputs go (default: temporary)")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    print(f"load average (1, 5, 15 min) at start: {loadavg()}; {os.cpu_count()} CPUs", flush=True)

    with contextlib.ExitStack() as stack:
        work = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        if args.model is not None:
            src = args.model
        else:
            src = work / "m.onnx"
            stamp = work / "m.dims"
            if not (src.exists() and stamp.exists() and stamp.read_text() == f"{args.dim} {args.layers}"):
                external_mlp(src, args.dim, args.layers)
                stamp.write_text(f"{args.dim} {args.layers}")
        w = weight_bytes(src)
        n = w.size
        copy_s = memcpy_seconds(w)
        sample = w[: max(1, int(args.brotli_mb * 2**20) // 4)]
        brotli_float = brotli_weights_per_s(sample.tobytes(), sample.size)
        brotli_symbols = brotli_weights_per_s(symbols_sample(sample), sample.size)
        del w
        print(f"{n:,} float32 weights ({4 * n / 2**20:,.0f} MiB) in {src}", flush=True)
        print(f"memcpy of the weight bytes: {copy_s * 1e3:.1f} ms = {n / copy_s / 1e6:,.0f} M weights/s", flush=True)
        print(f"brotli (quality 11, lgwin 24) on {sample.size * 4 / 2**20:.0f} MiB: float32 bytes "
              f"{brotli_float / 1e6:.2f} M weights/s, 1-byte symbols {brotli_symbols / 1e6:.2f} M weights/s", flush=True)

        settings = [("this checkout", None, None, {})]
        if args.reference:
            settings.append(("numpy quantizer", None, None, {"ONNX_UDC_REFERENCE_QUANTIZE": "1"}))
        if args.checkout is not None:
            settings.append((f"checkout {args.checkout}", args.checkout, args.library, {}))
        rows, digests, profiles = [], set(), {}
        for label, checkout, library, env_extra in settings:
            for t in threads:
                best = None
                for _ in range(args.repeat):
                    r = run_child(src, work / "out.onnx", t, checkout=checkout, library=library, env_extra=env_extra,
                                  profile=False, coder=args.coder)
                    best = r if best is None or r["cpu"] < best["cpu"] else best
                digests.add(best["sha"])
                per_cpu = n / best["cpu"]
                rows.append(f"| {label} | {t} | {best['wall']:.2f} s | {best['cpu']:.2f} s | {best['process_cpu']:.2f} s "
                            f"| {per_cpu / 1e6:.1f} M | {n / best['process_cpu'] / 1e6:.1f} M | {n / best['wall'] / 1e6:.1f} M "
                            f"| {(n / copy_s) / per_cpu:.0f}x | {per_cpu / brotli_float:.0f}x / {per_cpu / brotli_symbols:.0f}x "
                            f"| {best['sha']} |")
                print(rows[-1], flush=True)
            if checkout is None:
                profiles[label] = run_child(src, work / "out.onnx", 1, checkout=checkout, library=library,
                                            env_extra=env_extra, profile=True, coder=args.coder)

        print()
        print("| run | --threads | wall (main) | CPU (main) | CPU (process) | weights/CPU-s (main) | "
              "weights/CPU-s (process) | weights/wall-s (main) | memcpy is x faster | x brotli q11 (float32 / symbols) "
              "| output sha256 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))
        for label, prof in profiles.items():
            print(f"\nstages of one --threads 1 run, {label} (CPU s of the thread that ran each; nested stages "
                  f"indented; main() {prof['cpu']:.2f} CPU s, {prof['wall']:.2f} s wall):\n")
            print("| stage | calls | CPU s | share of main() |")
            print("|---|---|---|---|")
            for name, (calls, spent) in prof["stages"].items():
                if not calls:
                    continue
                print(f"| {name} | {calls} | {spent:.3f} | {100 * spent / prof['cpu']:.0f}% |")
        print(f"\nload average (1, 5, 15 min) at end: {loadavg()}")
        if len(digests) != 1:
            sys.exit(f"outputs differ between runs: {sorted(digests)}")
        print("every run wrote the same bytes")


if __name__ == "__main__":
    main()
