"""Bad models and bad output folders, one table, run through the command line in-process.

Each case builds its model (small, onnx.helper) in an input folder, then runs the CLI
commands it names, each with an empty output folder, under the fault it injects (if any).
What each command must do is in the case: the exit code and a regex the message (the
first stderr line) must match. ``run_case`` records for each command the exit code, the
stderr lines, whether every input file is byte-identical afterwards, and what was left
behind (in the output folder, and any new file in the input folder).

Used by tests/test_bad_models.py (asserts) and tools/bad_models.py (writes
docs/results/bad_models.md): one table for both.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

sys.path.insert(0, str(Path(__file__).resolve().parent))

import modelzoo  # noqa: E402
from blobs import patch  # noqa: E402

# The commands, as templates: {model} the case's model, {out} its (empty) output folder.
COMMANDS = {
    "compress": ("compress", "{model}", "-o", "{out}/c.onnx", "-q", "--step-rel", "0.1"),
    "inspect": ("inspect", "{model}"),
    "decompress": ("decompress", "{model}", "-o", "{out}/d.onnx"),
    "verify": ("verify", "{model}", "{model}"),
}
WRITES = {"compress": "c.onnx", "decompress": "d.onnx"}  # the file a successful command leaves


@dataclass(frozen=True)
class Case:
    name: str
    what: str  # one line for the table
    build: Callable[[Path], Path]  # writes the model (and its side files) into a folder; returns its path
    expect: dict[str, tuple[int, str]]  # command -> (exit code, regex of the first stderr line)
    argv: dict[str, tuple[str, ...]] = field(default_factory=dict)  # command templates replacing COMMANDS'
    fault: Callable[[Path], contextlib.AbstractContextManager] | None = None  # given the output folder


@dataclass
class Outcome:
    case: str
    command: str
    argv: list[str]  # as run, with the folders shortened to in/ and out/
    code: int
    stderr: list[str]
    input_intact: bool
    leftovers: list[str]  # files beyond the expected output, in out/ and new in in/
    wrote: bool  # the command's output file exists (for compress and decompress)

    @property
    def message(self) -> str:
        return self.stderr[0] if self.stderr else ""


# ---- models ---------------------------------------------------------------------------------
def _save(model: onnx.ModelProto, folder: Path, name: str = "model.onnx") -> Path:
    path = folder / name
    onnx.save_model(model, str(path))
    return path


def _cnn() -> onnx.ModelProto:
    return modelzoo.cnn(channels=32)


def _initializer(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def _dims_mismatch(folder: Path) -> Path:
    model = _cnn()
    w = _initializer(model, "conv2.w")
    w.raw_data = bytes(w.raw_data)[:4000]
    return _save(model, folder)


def _negative_dims(folder: Path) -> Path:
    model = _cnn()
    _initializer(model, "conv1.b").dims[:] = [-32]
    return _save(model, folder)


def _typed_mismatch(folder: Path) -> Path:
    model = modelzoo.mlp()
    w = _initializer(model, "W")
    values = nh.to_array(w).ravel()[:100]
    w.ClearField("raw_data")
    w.float_data.extend(values.tolist())
    return _save(model, folder)


def _constant_mismatch(folder: Path) -> Path:
    model = modelzoo.constants()
    value = model.graph.node[0].attribute[0].t
    value.raw_data = bytes(value.raw_data)[:100]
    return _save(model, folder)


def _branch(model: onnx.ModelProto, name: str = "then_branch") -> onnx.GraphProto:
    node = next(n for n in model.graph.node if n.op_type == "If")
    return next(a for a in node.attribute if a.name == name).g


def _subgraph_initializer_mismatch(folder: Path) -> Path:
    model = modelzoo.with_if()
    then = _branch(model)
    own = nh.from_array(np.ones((64, 64), np.float32), "W_then")
    own.raw_data = bytes(own.raw_data)[:1000]
    then.initializer.append(own)
    then.node[0].input[1] = "W_then"
    return _save(model, folder)


def _dangling_subgraph_input(folder: Path) -> Path:
    model = modelzoo.with_if()
    _branch(model).node[0].input[1] = "W_missing"  # an outer name nothing defines
    return _save(model, folder)


def nested_outer_initializer() -> onnx.ModelProto:
    """If inside If: the inner then-branch reads W, an initializer of the main graph, two
    scopes up (valid ONNX: compress must keep it running, same outputs)."""
    rng = np.random.default_rng(0)
    w = (rng.standard_normal((64, 64)) / 8).astype(np.float32)
    out = lambda n: [h.make_tensor_value_info(n, T.FLOAT, None)]  # noqa: E731
    inner_then = h.make_graph([h.make_node("MatMul", ["x", "W"], ["it"])], "inner_then", [], out("it"))
    inner_else = h.make_graph([h.make_node("Identity", ["x"], ["ie"])], "inner_else", [], out("ie"))
    outer_then = h.make_graph([h.make_node("If", ["cond"], ["ot"], then_branch=inner_then, else_branch=inner_else)],
                              "outer_then", [], out("ot"))
    outer_else = h.make_graph([h.make_node("Neg", ["x"], ["oe"])], "outer_else", [], out("oe"))
    graph = h.make_graph(
        [h.make_node("If", ["cond"], ["y"], then_branch=outer_then, else_branch=outer_else)], "nested",
        [h.make_tensor_value_info("cond", T.BOOL, []), h.make_tensor_value_info("x", T.FLOAT, ["N", 64])],
        [h.make_tensor_value_info("y", T.FLOAT, ["N", 64])], [nh.from_array(w, "W")])
    return modelzoo._model(graph)


def _nested(folder: Path) -> Path:
    return _save(nested_outer_initializer(), folder)


def _typed_weight(elem: int, dtype) -> Callable[[Path], Path]:
    """y = x @ W with W of a type onnx-udc does not code (float64: double MatMul; bfloat16:
    through a Cast to float)."""
    def build(folder: Path) -> Path:
        w = np.random.default_rng(0).standard_normal((64, 64))
        if elem == T.BFLOAT16:
            bits = (w.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16)
            init = h.make_tensor("W", T.BFLOAT16, [64, 64], bits.tobytes(), raw=True)
            nodes, io = [h.make_node("Cast", ["W"], ["Wf"], to=T.FLOAT), h.make_node("MatMul", ["x", "Wf"], ["y"])], T.FLOAT
        else:
            init, nodes, io = nh.from_array(w.astype(dtype), "W"), [h.make_node("MatMul", ["x", "W"], ["y"])], elem
        graph = h.make_graph(nodes, "typed", [h.make_tensor_value_info("x", io, ["N", 64])],
                             [h.make_tensor_value_info("y", io, ["N", 64])], [init])
        return _save(modelzoo._model(graph), folder)
    return build


def _external(folder: Path) -> Path:
    path = folder / "model.onnx"
    onnx.save_model(_cnn(), str(path), save_as_external_data=True, location="weights.bin", size_threshold=1024)
    return path


def _external_missing(folder: Path) -> Path:
    path = _external(folder)
    (folder / "weights.bin").unlink()
    return path


def _external_truncated(folder: Path) -> Path:
    path = _external(folder)
    data = (folder / "weights.bin").read_bytes()
    (folder / "weights.bin").write_bytes(data[: len(data) // 2])
    return path


def _relocate(folder: Path, location: str) -> Path:
    path = _external(folder)
    model = onnx.load(str(path), load_external_data=False)
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(model, str(path))
    return path


def _external_outside(folder: Path) -> Path:
    return _relocate(folder, "../weights.bin")


def _external_absolute(folder: Path) -> Path:
    return _relocate(folder, "/etc/hostname")


def _compressed(mutate: Callable[[bytes], bytes] | None = None, dims_follow: bool = True) -> Callable[[Path], Path]:
    """The compressed CNN, its first blob's bytes mutated (dims following the new length, or not)."""
    def build(folder: Path) -> Path:
        from onnx_udc import CompressConfig, ScalarConfig, compress_model
        from onnx_udc.graph import decode_nodes

        model, _ = compress_model(_cnn(), CompressConfig(scalar=ScalarConfig(step_rel=0.2)))
        if mutate is not None:
            _, blob = decode_nodes(model)[0]
            blob.raw_data = mutate(bytes(blob.raw_data))
            if dims_follow:
                blob.dims[:] = [len(blob.raw_data)]
        return _save(model, folder)
    return build


def _with_calib(arrays: dict[str, np.ndarray]) -> Callable[[Path], Path]:
    """The CNN and a calibration file model.onnx.npz holding ``arrays``."""
    def build(folder: Path) -> Path:
        path = _save(_cnn(), folder)
        np.savez(str(path) + ".npz", **arrays)
        return path
    return build


CALIB_COMPRESS = ("compress", "{model}", "-o", "{out}/c.onnx", "-q", "--calib", "{model}.npz")


def _not_onnx(folder: Path) -> Path:
    path = folder / "model.onnx"
    path.write_bytes(b"this is not an onnx model\n")
    return path


# ---- faults of the output folder ------------------------------------------------------------
@contextlib.contextmanager
def read_only_folder(out: Path):
    """out/ made read-only; as root (where permissions do not stop writes) making the
    staging folder fails as it would for anyone else."""
    from onnx_udc.graph import modelio

    out.chmod(0o555)
    try:
        if os.geteuid() == 0:
            def refuse(*args, **kwargs):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

            with mock.patch.object(modelio, "_make_folder", refuse):
                yield
        else:
            yield
    finally:
        out.chmod(0o755)


@contextlib.contextmanager
def full_folder(out: Path):
    """The disk fills up during the write: a part of the file lands, then ENOSPC."""
    from onnx_udc.graph import modelio

    def partial(path, data):
        Path(path).write_bytes(data[: len(data) // 3])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    with mock.patch.object(modelio, "_write_synced", partial):
        yield


# ---- the table -------------------------------------------------------------------------------
E_MODEL, E_FORMAT, E_OUTPUT = 2, 3, 4
ALL = ("compress", "inspect", "decompress", "verify")


def _all(code: int, regex: str, commands=ALL) -> dict[str, tuple[int, str]]:
    return {c: (code, regex) for c in commands}


NOTE = r"^onnx-udc: note: 1 {} tensor \([\d.]+ KB\) kept dense: onnx-udc compresses float32/float16"

CASES: list[Case] = [
    Case("dims_mismatch", "initializer whose raw_data is shorter than its dims", _dims_mismatch,
         _all(E_MODEL, r"initializer 'conv2.w': dims 64x32x3x3 of FLOAT need 73,728 bytes, raw_data holds 4,000")),
    Case("negative_dims", "initializer with a negative dim", _negative_dims,
         _all(E_MODEL, r"initializer 'conv1.b': negative dims -32")),
    Case("typed_data_mismatch", "float_data with fewer values than its dims", _typed_mismatch,
         _all(E_MODEL, r"initializer 'W': dims 64x64 of FLOAT need 4,096 float_data values, the tensor holds 100")),
    Case("constant_mismatch", "Constant node value shorter than its dims", _constant_mismatch,
         _all(E_MODEL, r"tensor 'value' of node 'const_w1' \(Constant\): dims 64x64 of FLOAT need 16,384 bytes")),
    Case("subgraph_initializer_mismatch", "initializer of an If branch shorter than its dims",
         _subgraph_initializer_mismatch,
         _all(E_MODEL, r"initializer 'W_then' in subgraph then_branch of node 'y' \(If\): .* raw_data holds 1,000")),
    Case("dangling_subgraph_input", "If branch reading an outer name nothing defines", _dangling_subgraph_input,
         _all(E_MODEL, r"node 't' \(MatMul\) in subgraph then_branch of node 'y' \(If\) reads 'W_missing'")),
    Case("nested_outer_initializer", "If in If reading a main-graph initializer (valid)", _nested,
         _all(0, r"^$")),
    Case("float64_weights", "float64 MatMul weight", _typed_weight(T.DOUBLE, np.float64),
         {"compress": (0, NOTE.format("float64")), "inspect": (0, r"^$"), "decompress": (0, r"^$"),
          "verify": (0, r"^$")}),
    Case("bfloat16_weights", "bfloat16 weight read through a Cast", _typed_weight(T.BFLOAT16, None),
         {"compress": (0, NOTE.format("bfloat16")), "inspect": (0, r"^$"), "decompress": (0, r"^$"),
          "verify": (0, r"^$")}),
    Case("external_missing", "external data file deleted", _external_missing,
         _all(E_MODEL, r"external data of initializer 'conv1.w' is missing: weights.bin is not a file")),
    Case("external_truncated", "external data file cut in half", _external_truncated,
         _all(E_MODEL, r"external data of initializer '[\w.]+' is truncated: weights.bin holds [\d,]+ of its "
                       r"[\d,]+ bytes")),
    Case("external_outside", "external data location ../weights.bin", _external_outside,
         _all(E_MODEL, r"points outside the model's folder: \.\./weights.bin")),
    Case("external_absolute", "external data location /etc/hostname", _external_absolute,
         _all(E_MODEL, r"is an absolute path \(/etc/hostname\)")),
    Case("blob_dims_stale", "blob cut in half, its dims not updated", _compressed(lambda b: b[: len(b) // 2], False),
         _all(E_MODEL, r"initializer '[\w.]+__udc_blob': dims \d+ of UINT8 need [\d,]+ bytes, raw_data holds")),
    Case("blob_truncated", "blob cut in half, dims updated (a valid tensor)", _compressed(lambda b: b[: len(b) // 2]),
         {"decompress": (E_FORMAT, r"declares"), "inspect": (E_FORMAT, r"declares|truncated|TRUNCATED"),
          "verify": (E_FORMAT, r"TRUNCATED|declares")}),
    Case("blob_garbage", "blob replaced by 70 bytes of text", _compressed(lambda b: b"garbage" * 10),
         {"decompress": (E_FORMAT, r"magic"), "inspect": (E_FORMAT, r"magic"), "verify": (E_FORMAT, r"MAGIC|magic")}),
    Case("blob_huge_shape", "blob declaring a 2^41-element dim (valid CRC)",
         _compressed(lambda b: patch(b, 40, "Q", 1 << 41)),
         {"decompress": (E_FORMAT, r"LIMIT|limit"), "inspect": (E_FORMAT, r"LIMIT|limit"),
          "verify": (E_FORMAT, r"LIMIT|limit")}),
    Case("blob_expansion", "blob declaring 2^20x32x3x3 float32 (1.2 GB, valid CRC)",
         _compressed(lambda b: patch(b, 40, "Q", 1 << 20)),
         {"decompress": (E_FORMAT, r"LIMIT|limit"), "inspect": (E_FORMAT, r"LIMIT|limit"),
          "verify": (E_FORMAT, r"LIMIT|limit")}),
    Case("not_onnx", "a text file", _not_onnx, _all(E_MODEL, r"not a valid ONNX model")),
    Case("calib_shape_rejected", "calibration images 27 pixels high for a 28x28 input",
         _with_calib({"input": np.zeros((8, 1, 27, 28), np.float32)}),
         {"compress": (E_MODEL, r"onnxruntime failed on a calibration batch: .*index: 2 Got: 27 Expected: 28")},
         argv={"compress": CALIB_COMPRESS}),
    Case("calib_input_missing", "calibration file whose array is named for no model input",
         _with_calib({"pixels": np.zeros((8, 1, 28, 28), np.float32)}),
         {"compress": (E_MODEL, r"lack model input\(s\) \['input'\]; the file holds \['pixels'\]")},
         argv={"compress": CALIB_COMPRESS}),
    Case("output_is_input", "-o the input model itself", lambda f: _save(_cnn(), f),
         {c: (E_OUTPUT, r"is the input model itself") for c in ("compress", "decompress")},
         argv={"compress": ("compress", "{model}", "-o", "{model}", "-q", "--step-rel", "0.1"),
               "decompress": ("decompress", "{model}", "-o", "{model}")}),
    Case("read_only_output", "output folder read-only", lambda f: _save(_cnn(), f),
         {c: (E_OUTPUT, r"not writable|Permission denied") for c in ("compress", "decompress")}, fault=read_only_folder),
    Case("full_output", "output folder's disk full (ENOSPC mid-write)", lambda f: _save(_cnn(), f),
         {c: (E_OUTPUT, r"cannot write: No space left on device") for c in ("compress", "decompress")},
         fault=full_folder),
]


# ---- running --------------------------------------------------------------------------------
@contextlib.contextmanager
def _captured():
    """stdout and stderr of the CLI, Python's and native code's alike (file descriptors 1, 2)."""
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    files = {fd: tempfile.TemporaryFile() for fd in (1, 2)}
    streams = sys.stdout, sys.stderr
    py = {1: io.StringIO(), 2: io.StringIO()}
    texts: dict[int, str] = {}
    try:
        for fd in (1, 2):
            os.dup2(files[fd].fileno(), fd)
        sys.stdout, sys.stderr = py[1], py[2]
        yield texts
    finally:
        sys.stdout, sys.stderr = streams
        for fd in (1, 2):
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
            files[fd].seek(0)
            texts[fd] = files[fd].read().decode(errors="replace") + py[fd].getvalue()
            files[fd].close()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run_case(case: Case, root: Path) -> list[Outcome]:
    """Build ``case`` under ``root`` (which must be empty) and run each of its commands."""
    from onnx_udc.cli import main

    inputs = root / "in"
    inputs.mkdir(parents=True)
    model = case.build(inputs)
    before = _snapshot(inputs)
    outcomes = []
    for command in case.expect:
        out = root / f"out_{command}"
        out.mkdir()
        template = case.argv.get(command, COMMANDS[command])
        argv = [a.format(model=model, out=out) for a in template]
        with case.fault(out) if case.fault else contextlib.nullcontext(), _captured() as texts:
            code = main(argv)
        after = _snapshot(inputs)
        expected_output = {WRITES[command]} if code == 0 and command in WRITES else set()
        leftovers = sorted(set(p.name for p in out.iterdir()) - expected_output)
        leftovers += sorted(f"in/{n}" for n in set(after) - set(before))
        intact = all(after.get(n) == data for n, data in before.items())
        shorten = lambda text: text.replace(str(out), "out").replace(str(inputs), "in")  # noqa: E731
        stderr = [shorten(line) for line in texts[2].splitlines() if line.strip()]
        wrote = command in WRITES and (out / WRITES[command]).is_file()
        outcomes.append(Outcome(case.name, command, [shorten(a) for a in argv], code, stderr, intact, leftovers, wrote))
    return outcomes


def problems(case: Case, outcome: Outcome) -> list[str]:
    """What is wrong with ``outcome`` against ``case``'s expectations (empty: as expected)."""
    code, regex = case.expect[outcome.command]
    found = []
    if outcome.code != code:
        found.append(f"exit {outcome.code}, expected {code}")
    if any("Traceback" in line for line in outcome.stderr):
        found.append("a traceback on stderr")
    if code != 0:
        if len(outcome.stderr) != 1 or not outcome.message.startswith("onnx-udc: error: "):
            found.append(f"stderr is not one 'onnx-udc: error:' line: {outcome.stderr}")
    elif any(not re.match(r"onnx-udc: (note|warning): ", line) for line in outcome.stderr):
        found.append(f"stderr holds more than notes and warnings: {outcome.stderr}")
    if not re.search(regex, outcome.message):
        found.append(f"message {outcome.message!r} does not match {regex!r}")
    if code == 0 and outcome.command in WRITES and not outcome.wrote:
        found.append("no output written")
    if not outcome.input_intact:
        found.append("the input changed")
    if outcome.leftovers:
        found.append(f"left behind: {outcome.leftovers}")
    return found
