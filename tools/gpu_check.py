#!/usr/bin/env python3
"""The CUDA decoder on a real GPU, in one command (tools/gpu_check.sh sets it up).

    python tools/gpu_check.py [--models fmnist,ppocr_det] [--repeat 5] [--out report.md]

1. The library: built with CUDA, the devices it sees, onnxruntime's providers.
2. Golden vectors (tests/golden): decoded on the GPU by ``udc_decode_cuda`` and by the
   decode op under CUDAExecutionProvider (CPU fallback disabled, so every node runs on
   the GPU); both must equal the golden bytes.
3. Zoo models, compressed with the defaults: every blob decoded on the GPU must equal
   the CPU decoder's bytes; the portable model (decode ops on the GPU, proven by
   onnxruntime's profile) must give the outputs of the fast loader (CPU-decoded weights on
   the GPU) and is compared with the original model. Printed: decode throughput (weights
   per second: the reconstruction kernel alone and the whole call with entropy decoding
   on the CPU) and session-creation time of original / portable / fast, medians of
   --repeat, as ratios against the original measured in the same run.

Exit status 0 when every check passes, 1 otherwise; a missing GPU or CUDA provider is
reported as such (exit 2), never as a pass.

--dry-run-on-cpu runs the same script with CPUExecutionProvider and the host twin of the
GPU path (udc_decode_units): it checks the script itself on machines without a GPU (the
test suite does), and proves nothing about the GPU.
"""

from __future__ import annotations

import argparse
import json
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
from onnx import TensorProto, helper  # noqa: E402

from onnx_udc import compress_model  # noqa: E402
from onnx_udc.format import DType  # noqa: E402
from onnx_udc.graph import blob_bytes, decode_nodes  # noqa: E402
from onnx_udc.graph.modelio import save_model  # noqa: E402
from onnx_udc import InferenceSession, NativeDecoder, library_path  # noqa: E402

CUDA = "CUDAExecutionProvider"  # --dry-run-on-cpu: CPUExecutionProvider
GOLDEN = ROOT / "tests" / "golden"
FAILURES: list[str] = []


def check(ok: bool, what: str) -> bool:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}", flush=True)
    if not ok:
        FAILURES.append(what)
    return ok


def decode_model(blob: bytes, dtype: DType) -> onnx.ModelProto:
    init = helper.make_tensor("blob", TensorProto.UINT8, [len(blob)], blob, raw=True)
    nodes = [helper.make_node(dtype.op_type, ["blob"], ["w"], domain="ai.onnx_udc"), helper.make_node("Identity", ["w"], ["out"])]
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("out", int(dtype), None)], [init])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx_udc", 1)], ir_version=10)


def golden(native: NativeDecoder) -> None:
    print("golden vectors", flush=True)
    cases = json.loads((GOLDEN / "manifest.json").read_text())
    api_bad, ort_bad = [], []
    for case in cases:
        blob = (GOLDEN / f"{case['name']}.blob").read_bytes()
        expected = (GOLDEN / f"{case['name']}.bin").read_bytes()
        if gpu_decode(native, blob)[0].tobytes() != expected:
            api_bad.append(case["name"])
        options = ort.SessionOptions()
        options.register_custom_ops_library(library_path())
        if CUDA != "CPUExecutionProvider":
            options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
        dtype = DType.from_numpy(np.dtype(case["dtype"]))
        session = ort.InferenceSession(decode_model(blob, dtype).SerializeToString(), options, providers=[CUDA])
        if any(session.run(None, {})[0].tobytes() != expected for _ in range(2)):
            ort_bad.append(case["name"])
    check(not api_bad, f"udc_decode_cuda: {len(cases) - len(api_bad)}/{len(cases)} golden vectors bit-exact {api_bad or ''}")
    check(not ort_bad, f"decode op on {CUDA}: {len(cases) - len(ort_bad)}/{len(cases)} bit-exact {ort_bad or ''}")


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def decode_ops_on_gpu(path: Path) -> tuple[int, int]:
    """(decode nodes run by CUDA, decode nodes run at all) from onnxruntime's profile."""
    options = ort.SessionOptions()
    options.register_custom_ops_library(library_path())
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as tmp:
        options.profile_file_prefix = str(Path(tmp) / "prof")
        session = ort.InferenceSession(str(path), options, providers=list(dict.fromkeys([CUDA, "CPUExecutionProvider"])))
        session.run(None, FEEDS[0])
        events = json.loads(Path(session.end_profiling()).read_text())
    ops = [e for e in events if e.get("cat") == "Node" and e.get("args", {}).get("op_name", "").startswith("Decode")]
    names = {e["name"] for e in ops}
    on_gpu = {e["name"] for e in ops if e["args"].get("provider") == CUDA}
    return len(on_gpu), len(names)


FEEDS: list[dict] = []


def gpu_decode(native: NativeDecoder, blob: bytes):
    return native.decode_cuda(blob)


def dry_run_on_cpu() -> None:
    """Swap the GPU for the CPU: CPUExecutionProvider and udc_decode_units."""
    global CUDA, gpu_decode
    from onnx_udc.native import CudaTiming

    CUDA = "CPUExecutionProvider"
    gpu_decode = lambda native, blob: (native.decode_units(blob), CudaTiming())  # noqa: E731


def zoo_model(name: str, native: NativeDecoder, repeat: int, rows: list) -> None:
    from models import zoo

    print(f"zoo model {name}", flush=True)
    entry = zoo.get(name)
    original = entry.onnx_path()
    feeds = entry.feeds(limit=8)
    FEEDS[:] = feeds
    model, _ = compress_model(onnx.load(str(original)))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.udc.onnx"
        save_model(model, path)

        weights, kernel_s, total_s, bad = 0, 0.0, 0.0, []
        for node, init in decode_nodes(model):
            blob = blob_bytes(init)
            cpu = native.decode(blob)
            start = time.perf_counter()
            gpu, timing = gpu_decode(native, blob)
            total_s += time.perf_counter() - start
            kernel_s += timing.kernel_s
            weights += cpu.size
            if gpu.tobytes() != cpu.tobytes():
                bad.append(node.output[0])
        check(not bad, f"{name}: {weights} weights decoded on the GPU bit-equal to the CPU decoder {bad or ''}")
        on_gpu, total = decode_ops_on_gpu(path)
        check(on_gpu == total > 0, f"{name}: {on_gpu}/{total} decode ops ran on {CUDA}")

        providers = list(dict.fromkeys([CUDA, "CPUExecutionProvider"]))
        options = ort.SessionOptions()
        options.register_custom_ops_library(library_path())
        make = {
            "original": lambda: ort.InferenceSession(str(original), providers=providers),
            "portable": lambda: ort.InferenceSession(str(path), options, providers=providers),
            "fast": lambda: InferenceSession(path, providers=providers),
        }
        for make_one in make.values():  # warm-up: CUDA context, cuDNN handles, file cache
            make_one()
        created = {k: median_time(f, repeat) for k, f in make.items()}
        sessions = {k: f() for k, f in make.items()}
        outs = {k: [s.run(None, f) for f in feeds] for k, s in sessions.items()}
        # Same weights, but the fast path lets onnxruntime constant-fold and pre-pack them,
        # which changes the float summation order: equal up to rounding, not bit for bit.
        rel = max(float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))
                  for pa, pb in zip(outs["portable"], outs["fast"]) for a, b in zip(pa, pb))
        check(rel <= 1e-4, f"{name}: portable (GPU-decoded) vs fast (CPU-decoded) outputs on {CUDA}: "
                           f"max |diff| / max |output| = {rel:.2g}")
        metrics = entry.fidelity(outs["original"], outs["portable"])
        print(f"  fidelity vs the original (default compression settings, {len(feeds)} batches): "
              + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()), flush=True)
        rows.append((name, weights, weights / max(kernel_s, 1e-12), weights / max(total_s, 1e-12), created))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="fmnist,ppocr_det")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the report here (markdown)")
    parser.add_argument("--dry-run-on-cpu", action="store_true", help="check this script without a GPU (proves nothing about the GPU)")
    args = parser.parse_args()

    native = NativeDecoder()
    if args.dry_run_on_cpu:
        print("DRY RUN ON THE CPU: CPUExecutionProvider and udc_decode_units stand in for the GPU")
        dry_run_on_cpu()
    print(f"library {native.path} ({native.version}); onnxruntime {ort.__version__}, providers {ort.get_available_providers()}")
    reason = None if args.dry_run_on_cpu else native.cuda_unavailable_reason()
    if reason is not None:
        print(f"NO GPU CHECK: the library cannot use a CUDA device: {reason}")
        return 2
    print(f"CUDA devices visible to the library: {native.cuda_device_count()}")  # 0 in a dry run
    if CUDA not in ort.get_available_providers():
        print(f"NO GPU CHECK: this onnxruntime has no {CUDA} (install onnxruntime-gpu)")
        return 2

    golden(native)
    rows: list = []
    for name in filter(None, args.models.split(",")):
        zoo_model(name, native, args.repeat, rows)

    lines = ["| model | weights | kernel weights/s | decode call weights/s | session original s | portable (x) | fast (x) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, weights, kernel, total, created in rows:
        base = created["original"]
        lines.append(f"| {name} | {weights} | {kernel:.3g} | {total:.3g} | {base:.3f} | "
                     f"{created['portable'] / base:.2f} | {created['fast'] / base:.2f} |")
    report = "\n".join(lines)
    print(report)
    print(f"{'ALL CHECKS PASSED' if not FAILURES else 'FAILED: ' + '; '.join(FAILURES)}")
    if args.out:
        args.out.write_text(report + "\n")
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
