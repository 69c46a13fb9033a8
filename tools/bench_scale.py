"""Peak memory and wall time of `onnx-udc compress` and `decompress` on a large model whose
weights live in external data (docs/results/scale.md).

    python tools/bench_scale.py [--dim 4096 --layers 16] [--coder C] [--workdir DIR] [--label after]

Builds an MLP of ``layers`` dim x dim float32 weights (the default: 16 x 64 MB = 1 GiB) saved
with its weights in ``m.onnx.data``, then runs under ``/usr/bin/time -v``:

    onnx-udc compress m.onnx -o out.onnx --step-rel 0.05 -q
    onnx-udc decompress out.onnx -o dense.onnx

and prints one markdown table row per command (peak RSS, wall and CPU time, output size)
plus the sha256 of the outputs (byte identity across code versions). ``--append FILE`` appends the rows to FILE.
"""

from __future__ import annotations

import argparse
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


def timed(argv: list[str]) -> tuple[float, float, float]:
    """(peak RSS in MiB, wall seconds, CPU seconds: user + system) of one command under
    /usr/bin/time -v."""
    done = subprocess.run(["/usr/bin/time", "-v", *argv], capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)[1]) / 1024
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", done.stderr)[1]
    seconds = 0.0
    for part in wall.split(":"):
        seconds = 60 * seconds + float(part)
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr)[1]) for kind in ("User", "System"))
    return rss, seconds, cpu


def sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None, help="where the models go (default: a temporary folder)")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--coder", default=None, help="--coder of the compress command (default: the CLI's default)")
    parser.add_argument("--append", type=Path, default=None, help="append the table rows to this file")
    parser.add_argument("--checkout", type=Path, default=None,
                        help="run the onnx_udc package of this folder (e.g. `git archive <commit> onnx_udc | tar -x "
                             "-C DIR` for the numbers of an older commit) instead of the installed one")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "onnx_udc.cli"]
    if args.checkout is not None:  # past an editable install's import hook, the package of that folder
        cli = [sys.executable, "-c", LAUNCH.format(path=str(args.checkout.resolve()))]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        work = Path(tmp)
        src = work / "m.onnx"
        weights = external_mlp(src, args.dim, args.layers)
        rows = []
        coder = ["--coder", args.coder] if args.coder else []
        runs = [("compress", [*cli, "compress", str(src), "-o", str(work / "out.onnx"), "--step-rel", "0.05", "-q",
                              *coder], work / "out.onnx"),
                ("decompress", [*cli, "decompress", str(work / "out.onnx"), "-o", str(work / "dense.onnx")],
                 work / "dense.onnx")]
        for what, argv, out in runs:
            rss, wall, cpu = timed(argv)
            files = sorted(work.glob(out.name + "*"))
            size = sum(p.stat().st_size for p in files)
            digest = ", ".join(f"{p.name} {sha(p)}" for p in files)
            rows.append(f"| {args.label} | {what} | {weights / 2**20:,.0f} MiB | {rss:,.0f} MiB | {wall:.1f} s "
                        f"| {cpu:.1f} s | {size / 2**20:,.1f} MiB | {digest} |")
    text = "\n".join(rows)
    print(text)
    if args.append:
        with open(args.append, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
