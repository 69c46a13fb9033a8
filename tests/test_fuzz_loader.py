"""Property fuzzing of the model loader and the commands that read models (hypothesis).

Seeds: small valid models (an MLP, Constant nodes in the main graph and an If branch, an If
branch reading an outer initializer, float16 weights), their compressed forms
(``compress_model`` with ``min_elements=16``) and two with external data, each written
into a temporary folder. Mutants: byte edits of the serialized model (flip, set, insert,
delete, truncate, a splice from another seed) and structured edits of the parsed proto
(dims, data_type, raw_data length, typed data, node inputs and op types, external_data
entries and the data file itself).

On every mutant ``graph.modelio.load_model`` either returns a model or raises a typed error
(a UdcError); ``decompress_model`` of what loads does the same, and its output passes
onnx.checker whenever the mutant did; ``onnx-udc inspect`` and ``decompress`` (in-process,
``cli.main``) exit 0 or with a documented code (never 70, the internal error), an error is
one ``onnx-udc: error:`` line with no traceback, the input is left unchanged, and a
written output loads again. Each example runs under a 20 s alarm (a hang fails it).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings, strategies as st  # noqa: E402

import modelzoo  # noqa: E402
from blobs import reseal  # noqa: E402
from onnx_udc import CompressConfig, compress_model  # noqa: E402
from onnx_udc.cli import main  # noqa: E402
from onnx_udc.errors import UdcError  # noqa: E402
from onnx_udc.graph.modelio import load_model  # noqa: E402
from onnx_udc.graph.rewrite import decompress_model  # noqa: E402
from onnx_udc.graph.validate import tensors_with_place  # noqa: E402

DOCUMENTED_EXITS = {0, 1, 2, 3, 4, 5}  # cli/__init__.py; 6 is compress-only, 70 is a bug
EXAMPLE_SECONDS = 20
SCALE = float(os.environ.get("ONNX_UDC_FUZZ_SCALE", "1"))  # more examples for a longer hunt
DATA_FILE = "w.bin"


# ---- seeds ------------------------------------------------------------------------------------
def _compressed(model: onnx.ModelProto) -> onnx.ModelProto:
    out, _ = compress_model(model, CompressConfig(min_elements=16))
    return out


def _external(model: onnx.ModelProto) -> tuple[bytes, dict[str, bytes]]:
    """``model`` saved with every tensor of 64 bytes or more in DATA_FILE: (model bytes, files)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=DATA_FILE, size_threshold=64)
        return path.read_bytes(), {DATA_FILE: (Path(tmp) / DATA_FILE).read_bytes()}


def _build_seeds() -> dict[str, tuple[bytes, dict[str, bytes]]]:
    plain = {
        "mlp": modelzoo.mlp(dim=16),
        "mlp16": modelzoo.mlp(dim=16, dtype=np.float16),
        "constants": modelzoo.constants(dim=16),
        "if": modelzoo.with_if(dim=16),
    }
    seeds = {name: (m.SerializeToString(), {}) for name, m in plain.items()}
    for name in ("mlp", "mlp16", "constants", "if"):
        seeds[f"{name}.udc"] = (_compressed(plain[name]).SerializeToString(), {})
    seeds["mlp.ext"] = _external(plain["mlp"])
    seeds["constants.udc.ext"] = _external(_compressed(plain["constants"]))
    return seeds


SEEDS = _build_seeds()
NAMES = sorted(SEEDS)


# ---- mutations --------------------------------------------------------------------------------
BIG = [0, 1, 2, 3, 15, 16, 17, 255, 256, 4096, 1 << 20, 1 << 31, (1 << 31) - 1, 1 << 32, 1 << 34, 1 << 40,
       (1 << 62), (1 << 63) - 1, -1, -2, -(1 << 63)]
LOCATIONS = ["", DATA_FILE, "missing.bin", "../" + DATA_FILE, "/etc/hostname", ".", "sub/../" + DATA_FILE,
             DATA_FILE + "\x00x", "m.onnx", "\u00e9.bin", "x" * 300]
NUMBERS = ["", "0", "1", "-1", "abc", "1e3", " 16", "4096", str(1 << 40), str(1 << 70), "0x10", "64"]
KEYS = ["location", "offset", "length", "checksum", "basepath", "bogus", ""]
OP_TYPES = ["Constant", "DecodeFloat", "DecodeFloat16", "Identity", "If", "MatMul", "NoSuchOp", ""]
DOMAINS = ["", "ai.onnx_udc", "ai.onnx", "com.example"]

STRUCTURED = ["dims", "add_dim", "drop_dims", "dtype", "raw_len", "to_typed", "clear_data", "make_external",
              "location", "ext_value", "ext_key", "drop_ext", "input", "drop_input", "op_type", "domain",
              "drop_attr", "data_file", "output", "drop_output", "dup_node", "move_node", "raw_flip", "graph_io",
              "version"]
structured_edits = st.lists(st.tuples(st.sampled_from(STRUCTURED), st.integers(0, 1 << 16), st.integers(0, 1 << 16)),
                            min_size=1, max_size=3)
byte_edits = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]),
                                st.integers(0, 1 << 20), st.integers(0, 1 << 16)),
                      min_size=1, max_size=4)


def _tensors(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    return [t for t, _ in tensors_with_place(model.graph)]


def _nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    found = []
    for node in graph.node:
        found.append(node)
        for attr in node.attribute:
            if attr.HasField("g"):
                found.extend(_nodes(attr.g))
            for g in attr.graphs:
                found.extend(_nodes(g))
    return found


def _graphs(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    found = [graph]
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("g"):
                found.extend(_graphs(attr.g))
            for g in attr.graphs:
                found.extend(_graphs(g))
    return found


def _graph_of(graph: onnx.GraphProto, node: onnx.NodeProto) -> onnx.GraphProto:
    return next(g for g in _graphs(graph) if any(m is node for m in g.node))


def _names(model: onnx.ModelProto) -> list[str]:
    names = {"", "nothing_defines_this"}
    for node in _nodes(model.graph):
        names.update(node.input)
        names.update(node.output)
    names.update(t.name for t in model.graph.initializer)
    return sorted(names)


def _entry(tensor: onnx.TensorProto, key: str):
    for e in tensor.external_data:
        if e.key == key:
            return e
    e = tensor.external_data.add()
    e.key = key
    return e


def apply_structured(model: onnx.ModelProto, files: dict[str, bytes], edits) -> None:
    """Apply ``edits`` (op, a, b) to ``model`` and its side ``files``, in place."""
    for op, a, b in edits:
        tensors, nodes = _tensors(model), _nodes(model.graph)
        t = tensors[a % len(tensors)] if tensors else None
        n = nodes[a % len(nodes)] if nodes else None
        if op == "dims" and t is not None and t.dims:
            t.dims[b % len(t.dims)] = BIG[(b >> 3) % len(BIG)]
        elif op == "add_dim" and t is not None:
            t.dims.append(BIG[b % len(BIG)] if b & 1 else 1)
        elif op == "drop_dims" and t is not None:
            del t.dims[b % (len(t.dims) + 1):]
        elif op == "dtype" and t is not None:
            values = sorted(T.DataType.values()) + [-1, 99, 1 << 30]
            t.data_type = values[b % len(values)]
        elif op == "raw_len" and t is not None and t.HasField("raw_data"):
            raw = bytes(t.raw_data)
            cut = b % (len(raw) + 8)
            t.raw_data = raw[:cut] if cut <= len(raw) else raw + bytes(cut - len(raw))
        elif op == "to_typed" and t is not None:
            t.ClearField("raw_data")
            getattr(t, ["float_data", "int32_data", "int64_data", "double_data", "uint64_data"][b % 5]).extend(
                range(b % 300))
        elif op == "clear_data" and t is not None:
            for f in ("raw_data", "float_data", "int32_data", "int64_data", "string_data"):
                t.ClearField(f)
        elif op == "make_external" and t is not None:
            t.data_location = [T.EXTERNAL, T.DEFAULT][b % 2]
            if b & 4:
                _entry(t, "location").value = DATA_FILE
        elif op == "location" and t is not None:
            _entry(t, "location").value = LOCATIONS[b % len(LOCATIONS)]
        elif op == "ext_value" and t is not None:
            _entry(t, ["offset", "length"][b & 1]).value = NUMBERS[(b >> 1) % len(NUMBERS)]
        elif op == "ext_key" and t is not None and t.external_data:
            t.external_data[b % len(t.external_data)].key = KEYS[(b >> 4) % len(KEYS)]
        elif op == "drop_ext" and t is not None and t.external_data:
            del t.external_data[b % len(t.external_data)]
        elif op == "input" and n is not None:
            names = _names(model)
            new = names[b % len(names)]
            if n.input and b & 1:
                n.input[(b >> 1) % len(n.input)] = new
            else:
                n.input.append(new)
        elif op == "drop_input" and n is not None and n.input:
            del n.input[b % len(n.input)]
        elif op == "op_type" and n is not None:
            n.op_type = OP_TYPES[b % len(OP_TYPES)]
        elif op == "domain" and n is not None:
            n.domain = DOMAINS[b % len(DOMAINS)]
        elif op == "drop_attr" and n is not None and n.attribute:
            del n.attribute[b % len(n.attribute)]
        elif op == "output" and n is not None and n.output:
            names = _names(model)
            n.output[b % len(n.output)] = names[(b >> 2) % len(names)]
        elif op == "drop_output" and n is not None and n.output:
            del n.output[b % len(n.output)]
        elif op == "dup_node" and n is not None:
            graph = _graph_of(model.graph, n)
            graph.node.insert(b % (len(graph.node) + 1), n)  # a copy: the same outputs twice
        elif op == "move_node" and n is not None:
            graphs = _graphs(model.graph)
            source, target = _graph_of(model.graph, n), graphs[b % len(graphs)]
            inside = [g for attr in n.attribute for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs)]
            if source is not target and not any(target is g for sub in inside for g in _graphs(sub)):
                copy = onnx.NodeProto()
                copy.CopyFrom(n)
                source.node.remove(n)
                target.node.insert((b >> 3) % (len(target.node) + 1), copy)
        elif op == "raw_flip" and t is not None and t.raw_data:
            raw = bytearray(t.raw_data)
            raw[(b >> 4) % len(raw)] ^= 1 << (b % 8)
            t.raw_data = reseal(raw) if b & 8 and len(raw) >= 16 else bytes(raw)  # blobs: past the checksum
        elif op == "graph_io":
            graph = _graphs(model.graph)[a % len(_graphs(model.graph))]
            values = list(graph.input) + list(graph.output)
            if values:
                names = _names(model)
                values[b % len(values)].name = names[(b >> 3) % len(names)]
        elif op == "version":
            if b & 1:
                model.ir_version = [0, 1, 3, 7, 8, 10, 11, 99, -1][(b >> 1) % 9]
            elif model.opset_import:
                model.opset_import[(b >> 1) % len(model.opset_import)].version = [0, 1, 7, 17, 23, 99, -1][(b >> 4) % 7]
        elif op == "data_file" and files:
            name = sorted(files)[0]
            data = bytearray(files[name])
            if b & 1 and data:
                data[(b >> 1) % len(data)] ^= 1 << (a % 8)
            else:
                del data[(b >> 1) % (len(data) + 1):]
            files[name] = bytes(data)


def apply_bytes(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for op, where, value in edits:
        at = where % (len(b) + 1)
        if op == "flip" and b:
            b[at % len(b)] ^= 1 << (value % 8)
        elif op == "set" and b:
            b[at % len(b)] = value & 0xFF
        elif op == "insert":
            b[at:at] = bytes([value & 0xFF]) * (1 + (value >> 8) % 4)
        elif op == "delete" and b:
            del b[at:at + 1 + (value >> 8) % 8]
        elif op == "truncate":
            del b[at:]
        elif op == "splice":
            other = SEEDS[NAMES[value % len(NAMES)]][0]
            start = (where >> 4) % len(other)
            b[at:at] = other[start:start + 1 + (value >> 4) % 64]
    return bytes(b)


# ---- the property -----------------------------------------------------------------------------
class _Hang(BaseException):
    """Raised by the per-example alarm (a BaseException: cli.main does not turn it into exit 70)."""


@contextlib.contextmanager
def _alarm(seconds: int):
    def ring(signum, frame):
        raise _Hang(f"example ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _checker_ok(model: onnx.ModelProto) -> bool:
    try:
        onnx.checker.check_model(model)
    except Exception:  # noqa: BLE001 - any rejection
        return False
    return True


def _cli(argv: list[str]) -> tuple[int, list[str]]:
    """``main(argv)``: its exit code and stderr lines. Every Python warning is shown each time
    (Python's default filters otherwise: deprecations hidden), as the CLI prints it."""
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("always")
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        code = main(argv)
    return code, [line for line in err.getvalue().splitlines() if line.strip()]


def _assert_cli_outcome(command: str, code: int, stderr: list[str]) -> None:
    assert code in DOCUMENTED_EXITS, (command, code, stderr)
    assert not any("Traceback" in line for line in stderr), (command, stderr)
    if code:
        assert len(stderr) == 1 and stderr[0].startswith("onnx-udc: error: "), (command, code, stderr)
    else:
        assert all(line.startswith(("onnx-udc: note: ", "onnx-udc: warning: ")) for line in stderr), (command, stderr)


def check_mutant(model_bytes: bytes, files: dict[str, bytes]) -> None:
    """The property, on one mutant (model bytes and its side files)."""
    with tempfile.TemporaryDirectory() as tmp, _alarm(EXAMPLE_SECONDS):
        root = Path(tmp)
        folder = root / "in"
        folder.mkdir()
        path = folder / "m.onnx"
        path.write_bytes(model_bytes)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}

        try:
            model = load_model(path)
        except UdcError:
            model = None
        if model is not None:
            valid = _checker_ok(model)
            try:
                dense = decompress_model(model)
            except UdcError:
                dense = None
            if dense is not None and valid:
                assert _checker_ok(dense), "decompress_model turned a checker-valid model into an invalid one"

        code, stderr = _cli(["inspect", str(path)])
        _assert_cli_outcome("inspect", code, stderr)
        if model is None:
            assert code != 0, "inspect accepted a model load_model rejects"

        out = root / "out"
        out.mkdir()
        code, stderr = _cli(["decompress", str(path), "-o", str(out / "d.onnx")])
        _assert_cli_outcome("decompress", code, stderr)
        if code == 0:
            assert model is not None, "decompress wrote a model that load_model rejects as input"
            written = load_model(out / "d.onnx")
            if _checker_ok(model):
                assert _checker_ok(written), "decompress wrote a model onnx.checker rejects"
        assert sorted(p.name for p in out.iterdir()) == (["d.onnx"] if code == 0 else []), "left behind"
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before, "the input changed"


SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                database=None)


def test_seeds_load_and_decompress():
    """Unmutated, every seed loads, inspects and decompresses (the property's baseline)."""
    assert len(SEEDS) == 10
    for name in NAMES:
        check_mutant(*SEEDS[name])


@settings(max_examples=int(150 * SCALE), **SETTINGS)
@given(seed=st.sampled_from(NAMES), edits=byte_edits)
# found: an external-data location holding a newline split the error message over two lines
# (the CLI now escapes control characters), and one that is not UTF-8 (upb hands over bytes:
# TypeError, exit 70)
@example(seed="mlp.ext", edits=[("set", 4749, 10)])
@example(seed="mlp.ext", edits=[("flip", 4749, 7)])
def test_loader_on_byte_mutants(seed, edits):
    data, files = SEEDS[seed]
    check_mutant(apply_bytes(data, edits), dict(files))


@settings(max_examples=int(250 * SCALE), **SETTINGS)
@given(seed=st.sampled_from(NAMES), edits=structured_edits)
# found: a node other than the decode node reading the blob initializer (decompress renamed
# it away: a dangling input in the output, and onnx.checker rejected it)
@example(seed="mlp.udc", edits=[("input", 2, 68)])
@example(seed="if.udc", edits=[("input", 1, 137)])
# found: a decode node without an output (IndexError, exit 70) or with an empty output name
# (a dense initializer named "": onnx.checker rejected the decompressed model)
@example(seed="constants.udc", edits=[("dup_node", 0, 0), ("drop_output", 0, 0)])
@example(seed="constants.udc", edits=[("dup_node", 0, 0), ("output", 0, 0)])
# found: an unknown external_data key: onnx's two-line UserWarning on stderr (now ignored by
# load_model; any other Python warning is one "onnx-udc: warning:" line)
@example(seed="mlp.ext", edits=[("ext_key", 0, 5 << 4)])
# found: an external-data location with a NUL byte (ValueError from Path.resolve, exit 70)
@example(seed="constants.udc.ext", edits=[("location", 0, 7)])
def test_loader_on_structured_mutants(seed, edits):
    data, files = SEEDS[seed]
    model = onnx.ModelProto()
    model.ParseFromString(data)
    files = dict(files)
    apply_structured(model, files, edits)
    check_mutant(model.SerializeToString(), files)
