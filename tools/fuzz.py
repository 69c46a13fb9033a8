"""Run the libFuzzer targets of runtime/fuzz (a fuzz build: every runtime source instrumented
for coverage, ASan and UBSan) over a seed corpus, and report executions, crashes, timeouts
and leaks per target. `make fuzz` calls it; docs/fuzzing.md records the runs.

    python tools/fuzz.py --build runtime/build-fuzz --seconds 600 [--jobs 1] [--markdown F]

The seed corpus (in BUILD/corpus/<target>/, rebuilt each run, libFuzzer's finds kept in
BUILD/corpus/<target>-found/) is every golden vector, one blob per quantizer x coder pair
(with and without a codeword table, padded, empty), for the range target the range
payloads of those blobs in its input layout, and for the fast target (the C fast loader's
model rewrite) small compressed models of every coder, with Constant-node, If-branch and
float16 weights. Exit status 1 when any target found a crash,
timeout, leak or out-of-memory (the reproducer is under BUILD/artifacts/).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = ("decode", "range", "rans", "fast")
QUANTIZERS = ("raw", "scalar", "a2", "d4", "e8", "pq", "scalar_channel")
CODERS = ("store", "brotli", "range", "rans")


def seed_blobs() -> dict[str, bytes]:
    """name -> blob: the golden vectors and a blob of every quantizer x coder pair."""
    from onnx_udc.codec import encode_tensor
    from onnx_udc.quantizers.pq import PQConfig, PQFit, block_count
    from onnx_udc.quantizers.scalar import ScalarConfig

    blobs = {p.stem: p.read_bytes() for p in sorted((ROOT / "tests" / "golden").glob("*.blob"))}
    rng = np.random.default_rng(17)
    for shape in ((6, 10), (3, 4, 3, 3)):
        w = (rng.standard_normal(shape) * np.linspace(0.1, 3, shape[-1])).astype(np.float32)
        for q in QUANTIZERS:
            config = {"scalar": ScalarConfig(0.3)}.get(q)
            if q == "pq":
                d = shape[-1] if len(shape) == 2 else 9
                fit = PQFit(order=tuple(range(len(shape))), d=d, centroids=rng.standard_normal((8, d)).astype(np.float16),
                            indices=rng.integers(0, 8, block_count(w.size, d)))
                config = PQConfig(fit=fit)
            for c in CODERS:
                blobs[f"{q}_{c}_{len(shape)}d"] = encode_tensor(w, quantizer=q, coder=c, config=config, seed=5).blob
    return blobs


def range_seeds(blobs: dict[str, bytes], coder: int = 2) -> dict[str, bytes]:
    """Range (coder 2) or rans (coder 3) target inputs: [width selector][numel u16][payload]
    for each blob of that coder."""
    from onnx_udc import quantizers
    from onnx_udc.format import parse_blob

    out = {}
    for name, blob in blobs.items():
        header, payload = parse_blob(blob)
        if header.coder != coder:
            continue
        count = quantizers.by_id(header.quantizer).symbol_count(header)  # numel, or blocks (pq)
        if count > 65535:
            continue
        out[name] = bytes([{1: 0, 2: 1, 4: 2}[header.symbol_width]]) + int(count).to_bytes(2, "little") + bytes(payload)
    return out


def fast_seeds() -> dict[str, bytes]:
    """Fast-loader target inputs: small compressed models (ModelProto bytes), every coder,
    a Constant-node weight, a weight inside an If branch, float16 weights."""
    import onnx
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    from onnx_udc import CompressConfig, compress_model

    rng = np.random.default_rng(23)

    def model(dtype, branch: bool) -> onnx.ModelProto:
        w1 = nh.from_array((rng.standard_normal((8, 8)) * 0.3).astype(dtype), "w1")
        w2 = (rng.standard_normal((8, 4)) * 0.3).astype(dtype)
        elem = T.FLOAT16 if dtype == np.float16 else T.FLOAT
        nodes = [h.make_node("MatMul", ["x", "w1"], ["a"]),
                 h.make_node("Constant", [], ["w2"], value=nh.from_array(w2, "w2v")),
                 h.make_node("MatMul", ["a", "w2"], ["y"])]
        inputs = [h.make_tensor_value_info("x", elem, [1, 8])]
        if branch:
            w3 = nh.from_array((rng.standard_normal((4, 4)) * 0.3).astype(dtype), "w3v")
            then = h.make_graph([h.make_node("Constant", [], ["w3"], value=w3),
                                 h.make_node("MatMul", ["y", "w3"], ["t"])], "then", [],
                                [h.make_tensor_value_info("t", elem, [1, 4])])
            other = h.make_graph([h.make_node("Identity", ["y"], ["e"])], "else", [],
                                 [h.make_tensor_value_info("e", elem, [1, 4])])
            nodes.append(h.make_node("If", ["c"], ["z"], then_branch=then, else_branch=other))
            inputs.append(h.make_tensor_value_info("c", T.BOOL, []))
        out = "z" if branch else "y"
        graph = h.make_graph(nodes, "g", inputs, [h.make_tensor_value_info(out, elem, [1, 4])], [w1])
        m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
        m.ir_version = 8
        return m

    seeds = {}
    for dtype in (np.float32, np.float16):
        for branch in (False, True):
            for coder in CODERS:
                compressed, _ = compress_model(model(dtype, branch), CompressConfig(min_elements=16, coder=coder, seed=3))
                seeds[f"{np.dtype(dtype).name}_{'if' if branch else 'plain'}_{coder}"] = compressed.SerializeToString()
    return seeds


def write_corpus(folder: Path, seeds: dict[str, bytes]) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, data in seeds.items():
        (folder / name).write_bytes(data)


_STAT = re.compile(r"stat::(\w+):\s+(\d+)")


def run_target(build: Path, target: str, seconds: int, jobs: int, max_len: int) -> dict:
    binary = build / f"udc_fuzz_{target}"
    corpus, found = build / "corpus" / target, build / "corpus" / f"{target}-found"
    artifacts = build / "artifacts" / target
    found.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [str(binary), str(found), str(corpus), f"-max_total_time={seconds}", "-timeout=10", "-rss_limit_mb=2048",
           f"-max_len={max_len}", "-print_final_stats=1", f"-artifact_prefix={artifacts}/", "-detect_leaks=1"]
    if jobs > 1:
        cmd += [f"-fork={jobs}", "-ignore_crashes=0"]
    started = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    log = proc.stdout + proc.stderr
    (build / f"fuzz-{target}.log").write_text(log)
    stats = {k: int(v) for k, v in _STAT.findall(log)}
    # this run's findings only: reproducers of earlier runs stay in the folder for inspection
    kinds = {kind: sum(1 for p in artifacts.glob(f"{kind}-*") if p.stat().st_mtime >= started - 1)
             for kind in ("crash", "timeout", "leak", "oom", "slow-unit")}
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    return {
        "target": target, "seconds": seconds, "exit": proc.returncode,
        "executions": stats.get("number_of_executed_units", 0),
        "exec_per_s": stats.get("average_exec_per_sec", 0), "peak_rss_mb": stats.get("peak_rss_mb", 0),
        "coverage": int(cov[-1][0]) if cov else 0, "features": int(cov[-1][1]) if cov else 0,
        "seeds": len(list(corpus.iterdir())), "corpus_after": len(list(found.iterdir())),
        **{f"{k}s": v for k, v in kinds.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", type=Path, default=ROOT / "runtime" / "build-fuzz")
    parser.add_argument("--seconds", type=int, default=600, help="total fuzzing time, split over the targets")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--jobs", type=int, default=1, help="libFuzzer -fork workers per target")
    parser.add_argument("--max-len", type=int, default=4096)
    parser.add_argument("--markdown", type=Path, help="append a results table here")
    args = parser.parse_args(argv)
    targets = args.targets.split(",")
    for t in targets:
        if not (args.build / f"udc_fuzz_{t}").is_file():
            print(f"fuzz: {args.build}/udc_fuzz_{t} is missing: run `make fuzz` (a fuzz build)", file=sys.stderr)
            return 2
    blobs = seed_blobs()
    write_corpus(args.build / "corpus" / "decode", blobs)
    write_corpus(args.build / "corpus" / "range", range_seeds(blobs))
    write_corpus(args.build / "corpus" / "rans", range_seeds(blobs, coder=3))
    write_corpus(args.build / "corpus" / "fast", fast_seeds())
    results = []
    for t in targets:
        r = run_target(args.build, t, max(1, args.seconds // len(targets)), args.jobs, args.max_len)
        results.append(r)
        print(json.dumps(r), flush=True)
    bad = [r for r in results if r["crashs"] or r["timeouts"] or r["leaks"] or r["ooms"] or r["exit"] != 0]
    if args.markdown:
        lines = ["", "| target | seconds | executions | exec/s | coverage | seeds | corpus after | crashes | "
                 "timeouts | leaks | ooms | peak RSS MB |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results:
            lines.append(f"| {r['target']} | {r['seconds']} | {r['executions']} | {r['exec_per_s']} | {r['coverage']} | "
                         f"{r['seeds']} | {r['corpus_after']} | {r['crashs']} | {r['timeouts']} | {r['leaks']} | "
                         f"{r['ooms']} | {r['peak_rss_mb']} |")
        with args.markdown.open("a") as f:
            f.write("\n".join(lines) + "\n")
    for r in bad:
        print(f"fuzz: {r['target']}: exit {r['exit']}, see {args.build}/fuzz-{r['target']}.log and "
              f"{args.build}/artifacts/{r['target']}/", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
