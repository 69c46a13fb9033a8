"""Peak memory, wall and CPU time of every command on a large model whose weights live in
external data (docs/results/scale.md).

    python tools/bench_scale.py [--dim 4096 --layers 16] [--coder C] [--workdir DIR] [--keep DIR]
                                [--only compress,decompress,...] [--label after]

Builds an MLP of ``layers`` dim x dim float32 weights (the default: 16 x 64 MB = 1 GiB) saved
with its weights in ``m.onnx.data``, then runs each command in its own process under
``/usr/bin/time -v``:

    ort         onnxruntime's own session on m.onnx (created, run once on 8 rows)
    compress    onnx-udc compress m.onnx -o out.onnx --step-rel 0.05 -q
    decompress  onnx-udc decompress out.onnx -o dense.onnx
    inspect     onnx-udc inspect out.onnx
    verify      onnx-udc verify m.onnx out.onnx (custom-op path)
    fast        onnx_udc.InferenceSession(out.onnx) created and run once on the same rows
    portable    the same with fast=False (the custom-op library registered)
    dense       onnxruntime's own session on dense.onnx (its output: the fast loader's, bit for bit)

and prints one markdown table row per command: peak RSS, wall and CPU time, the session
creation time (sessions), the output size and sha256 (files) or the sha256 of the output
array and its SQNR against onnxruntime's on the original (sessions). ``--keep DIR`` keeps
the models in DIR (reused by a later run with the same dims); ``--append FILE`` appends
the rows to FILE.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ("import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path if 'Editable' not in type(f).__name__ "
          "and 'Inplace' not in type(f).__name__]; sys.path.insert(0, {path!r}); sys.argv[0] = 'onnx-udc'; "
          "import onnx_udc; assert onnx_udc.__file__.startswith({path!r}), onnx_udc.__file__; "
          "runpy.run_module('onnx_udc.cli', run_name='__main__')")


def external_mlp(path: Path, dim: int, layers: int) -> int:
    """An MLP of ``layers`` dim x dim weights (and dim biases) at ``path``, every tensor in
    ``<name>.data``; built one layer at a time (never the whole model in memory). Returns
    the bytes of weights."""
    rng = np.random.default_rng(0)
    data_name = path.name + ".data"
    nodes, inits, x, offset = [], [], "x", 0
    with open(path.parent / data_name, "wb") as f:
        for i in range(layers):
            for name, array in ((f"w{i}", (rng.standard_normal((dim, dim), dtype=np.float32) / np.sqrt(dim))),
                                (f"b{i}", (rng.standard_normal(dim, dtype=np.float32) * 0.1))):
                raw = array.astype(np.float32).tobytes()
                offset += -offset % 4096
                f.seek(offset)
                f.write(raw)
                tensor = onnx.TensorProto(name=name, data_type=T.FLOAT, dims=array.shape,
                                          data_location=T.EXTERNAL)
                for key, value in (("location", data_name), ("offset", str(offset)), ("length", str(len(raw)))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
                inits.append(tensor)
                offset += len(raw)
                del raw, array
            nodes += [h.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]), h.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                      h.make_node("Relu", [f"a{i}"], [f"r{i}"])]
            x = f"r{i}"
    graph = h.make_graph(nodes, "mlp", [h.make_tensor_value_info("x", T.FLOAT, ["N", dim])],
                         [h.make_tensor_value_info(x, T.FLOAT, ["N", dim])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return layers * dim * dim * 4


def timed(argv: list[str]) -> tuple[float, float, float, str]:
    """(peak RSS in MiB, wall seconds, CPU seconds: user + system, its stdout) of one
    command under /usr/bin/time -v."""
    done = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr)[1]
    seconds = 0.0
    for part in wall.split(":"):
        seconds = 60 * seconds + float(part)
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr)[1]) for kind in ("User", "System"))
    return rss, seconds, cpu, done.stdout


def sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


SESSION = """
import hashlib, sys, time
import numpy as np
what, model, dim, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if what in ("ort", "dense"):
    import onnxruntime as ort
    start = time.perf_counter()
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
else:
    from onnx_udc import InferenceSession
    start = time.perf_counter()
    session = InferenceSession(model, fast=(what == "fast"))
created = time.perf_counter() - start
x = np.random.default_rng(0).standard_normal((8, dim)).astype(np.float32)
y = session.run(None, {"x": x})[0]
np.save(out, y)
print(f"created {created:.3f}")
"""

COMMANDS = ("ort", "compress", "decompress", "inspect", "verify", "fast", "portable", "dense")


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float:
    noise = float(np.sum((ref.astype(np.float64) - out) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / noise)


def verify_summary(text: str) -> str:
    """The last output row of `onnx-udc verify`'s table: 'r3: max |error| 0.0352, SQNR 31.4 dB, ...'."""
    cells = [[c.strip() for c in re.split(r"[│|┃]", line)[1:-1]] for line in text.splitlines() if "│" in line]
    rows = [c for c in cells if len(c) >= 3 and re.fullmatch(r"[-\d.e+]+|inf", c[2] or "")]
    if not rows:
        return "no table"
    name, err, sqnr, *rest = rows[-1]
    extra = "".join(f", {label} {value}" for label, value in zip(("cosine", "top-1"), rest) if value)
    return f"{name}: max abs error {err}, SQNR {sqnr} dB{extra}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None, help="where the models go (default: a temporary folder)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the models in this folder (and reuse them)")
    parser.add_argument("--only", default=",".join(COMMANDS), help=f"commands to run, of {','.join(COMMANDS)}")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--coder", default=None, help="--coder of the compress command (default: the CLI's default)")
    parser.add_argument("--append", type=Path, default=None, help="append the table rows to this file")
    parser.add_argument("--checkout", type=Path, default=None,
                        help="run the onnx_udc package of this folder (e.g. `git archive <commit> onnx_udc | tar -x "
                             "-C DIR` for the numbers of an older commit) instead of the installed one")
    args = parser.parse_args()
    only = args.only.split(",")
    if not set(only) <= set(COMMANDS):
        sys.exit(f"--only: unknown command(s) {', '.join(sorted(set(only) - set(COMMANDS)))}; of {', '.join(COMMANDS)}")
    cli = [sys.executable, "-m", "onnx_udc.cli"]
    python = [sys.executable]
    if args.checkout is not None:  # past an editable install's import hook, the package of that folder
        cli = [sys.executable, "-c", LAUNCH.format(path=str(args.checkout.resolve()))]
        python = [sys.executable, "-c", LAUNCH.format(path=str(args.checkout.resolve())).replace(
            "runpy.run_module('onnx_udc.cli', run_name='__main__')", "exec(sys.argv.pop(1))")]
    with contextlib.ExitStack() as stack:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            work = args.keep
        else:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.workdir)))
        src = work / "m.onnx"
        stamp = work / "m.dims"
        if stamp.exists() and stamp.read_text() == f"{args.dim} {args.layers}" and src.exists():
            weights = args.layers * args.dim * args.dim * 4
        else:
            weights = external_mlp(src, args.dim, args.layers)
            stamp.write_text(f"{args.dim} {args.layers}")
        rows = []
        coder = ["--coder", args.coder] if args.coder else []
        out, dense = work / "out.onnx", work / "dense.onnx"
        files = {"compress": ([*cli, "compress", str(src), "-o", str(out), "--step-rel", "0.05", "-q", *coder], out),
                 "decompress": ([*cli, "decompress", str(out), "-o", str(dense)], dense),
                 "inspect": ([*cli, "inspect", str(out)], None),
                 "verify": ([*cli, "verify", str(src), str(out)], None)}
        reference = None
        for what in only:
            if what in files:
                argv, made = files[what]
                rss, wall, cpu, text = timed(argv)
                if made is None:
                    detail = verify_summary(text) if what == "verify" else ""
                    rows.append(f"| {args.label} | {what} | {weights / 2**20:,.0f} MiB | {rss:,.0f} MiB | {wall:.1f} s "
                                f"| {cpu:.1f} s | | {detail} |")
                    print(rows[-1], flush=True)
                    continue
                outputs = sorted(work.glob(made.name + "*"))
                size = sum(p.stat().st_size for p in outputs)
                digest = ", ".join(f"{p.name} {sha(p)}" for p in outputs)
                rows.append(f"| {args.label} | {what} | {weights / 2**20:,.0f} MiB | {rss:,.0f} MiB | {wall:.1f} s "
                            f"| {cpu:.1f} s | | {size / 2**20:,.1f} MiB: {digest} |")
            else:
                model = {"ort": src, "dense": dense}.get(what, out)
                result = work / f"y_{what}.npy"
                rss, wall, cpu, text = timed([*python, "-c", SESSION, what, str(model), str(args.dim), str(result)])
                created = float(re.search(r"created ([\d.]+)", text)[1])
                y = np.load(result)
                if what == "ort":
                    reference = y
                noise = "" if reference is None else f", SQNR {sqnr_db(reference, y):.1f} dB vs ort"
                digest = hashlib.sha256(y.tobytes()).hexdigest()[:16]
                rows.append(f"| {args.label} | {what} session | {weights / 2**20:,.0f} MiB | {rss:,.0f} MiB | "
                            f"{wall:.1f} s | {cpu:.1f} s | {created:.1f} s | output {digest}{noise} |")
            print(rows[-1], flush=True)
    text = "\n".join(rows)
    if args.append:
        with open(args.append, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
