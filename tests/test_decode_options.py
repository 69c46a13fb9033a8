"""Decode options (runtime/README.md "Decode options"): udc_decode_ex through ctypes, and
the custom ops' session config entries / environment variables. Skipped when the library
is not built."""

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden"
OK, LIMIT_EXCEEDED, INVALID_ARGUMENT = 0, 7, 11


def _find_library() -> str | None:
    env = os.environ.get("ONNX_UDC_LIBRARY")
    candidates = [Path(env)] if env else []
    candidates += [ROOT / "onnx_udc" / "_lib" / "libonnx_udc.so", ROOT / "runtime" / "build" / "libonnx_udc.so"]
    for c in candidates:
        if c.is_file():
            return str(c)
    return None


LIBRARY = _find_library()
if LIBRARY is None:
    pytest.skip("libonnx_udc.so not built", allow_module_level=True)
_lib = ctypes.CDLL(LIBRARY)
if not hasattr(_lib, "udc_decode_ex"):
    pytest.skip(f"{LIBRARY} predates udc_decode_ex: rebuild it", allow_module_level=True)


class Options(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("threads", ctypes.c_uint32), ("max_output_bytes", ctypes.c_uint64)]


_lib.udc_decode_options_init.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_lib.udc_decode_options_init.restype = ctypes.c_int
for _name in ("udc_decode_ex", "udc_decode_units_ex"):
    getattr(_lib, _name).argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                                     ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    getattr(_lib, _name).restype = ctypes.c_int


def options(threads=0, max_output_bytes=0) -> Options:
    o = Options()
    assert _lib.udc_decode_options_init(ctypes.byref(o), ctypes.sizeof(o)) == OK
    assert o.struct_size == ctypes.sizeof(o) == 16
    o.threads, o.max_output_bytes = threads, max_output_bytes
    return o


def decode_ex(blob: bytes, nbytes: int, opts, entry="udc_decode_ex") -> tuple[int, bytes, str]:
    out = ctypes.create_string_buffer(max(nbytes, 1))
    err = ctypes.create_string_buffer(256)
    rc = getattr(_lib, entry)(blob, len(blob), out, nbytes, ctypes.byref(opts) if opts is not None else None, err, 256)
    return rc, out.raw[:nbytes], err.value.decode()


GOLDEN_NAMES = [entry["name"] for entry in json.loads((GOLDEN / "manifest.json").read_text())]


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_threads_and_cap_on_golden_vectors(name):
    blob = (GOLDEN / f"{name}.blob").read_bytes()
    want = (GOLDEN / f"{name}.bin").read_bytes()
    n = len(want)
    for threads in (1, 2, os.cpu_count() or 1, 0):
        for entry in ("udc_decode_ex", "udc_decode_units_ex"):
            rc, got, err = decode_ex(blob, n, options(threads), entry)
            assert rc == OK, err
            assert got == want
    assert decode_ex(blob, n, None) == (OK, want, "")
    rc, got, _ = decode_ex(blob, n, options(1, n))
    assert (rc, got) == (OK, want)
    if n:
        rc, _, err = decode_ex(blob, n, options(1, n - 1))
        assert rc == LIMIT_EXCEEDED and f"max_output_bytes {n - 1}" in err


def test_uninitialised_options_are_refused():
    blob = (GOLDEN / f"{GOLDEN_NAMES[0]}.blob").read_bytes()
    n = len((GOLDEN / f"{GOLDEN_NAMES[0]}.bin").read_bytes())
    rc, _, err = decode_ex(blob, n, Options())  # struct_size 0
    assert rc == INVALID_ARGUMENT and "struct_size" in err


# ---- the custom ops: session config entries, environment variables ------------------------

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")


def _model_bytes(name: str) -> bytes:
    """One ai.onnx_udc.Decode node on a constant golden blob (a float32 one)."""
    from onnx import TensorProto, helper, numpy_helper

    blob = np.frombuffer((GOLDEN / f"{name}.blob").read_bytes(), dtype=np.uint8)
    init = numpy_helper.from_array(blob, "W__udc_blob")
    node = helper.make_node("Decode", ["W__udc_blob"], ["W"], domain="ai.onnx_udc", name="W_decode")
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("W", TensorProto.FLOAT, None)], [init])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx_udc", 1)])
    model.ir_version = min(model.ir_version, 9)
    return model.SerializeToString()


F32 = next(e for e in json.loads((GOLDEN / "manifest.json").read_text()) if e["dtype"] == "float32")
F32_BYTES = (GOLDEN / f"{F32['name']}.bin").read_bytes()


def _session(entries: dict[str, str], register_first=False):
    so = ort.SessionOptions()
    if register_first:
        so.register_custom_ops_library(LIBRARY)
    for key, value in entries.items():
        so.add_session_config_entry(key, value)
    if not register_first:
        so.register_custom_ops_library(LIBRARY)
    return ort.InferenceSession(_model_bytes(F32["name"]), so, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("threads", ["1", "3", "0", "100000"])
def test_op_threads_entry_keeps_bytes(threads):
    out = _session({"onnx_udc.decode_threads": threads}).run(None, {})[0]
    assert out.tobytes() == F32_BYTES


def test_op_max_output_bytes_entry():
    n = len(F32_BYTES)
    assert _session({"onnx_udc.max_output_bytes": str(n)}).run(None, {})[0].tobytes() == F32_BYTES
    with pytest.raises(Exception, match=f"LIMIT_EXCEEDED: decoded size {n} bytes exceeds max_output_bytes {n - 1}"):
        _session({"onnx_udc.max_output_bytes": str(n - 1)})


def test_op_entries_after_registration_are_not_seen():
    out = _session({"onnx_udc.max_output_bytes": "1"}, register_first=True).run(None, {})[0]
    assert out.tobytes() == F32_BYTES


@pytest.mark.parametrize("value", ["", "-1", "1.5", "0x10", " 2", "99999999999999999999999"])
def test_op_bad_entry_fails_registration(value):
    so = ort.SessionOptions()
    so.add_session_config_entry("onnx_udc.decode_threads", value)
    with pytest.raises(Exception, match="onnx_udc.decode_threads"):
        so.register_custom_ops_library(LIBRARY)


def test_op_environment_variables(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(_model_bytes(F32["name"]))
    n = len(F32_BYTES)

    def run(env_extra, entries):
        code = (
            "import sys, onnxruntime as ort\n"
            "so = ort.SessionOptions()\n"
            f"for k, v in {entries!r}.items(): so.add_session_config_entry(k, v)\n"
            f"so.register_custom_ops_library({LIBRARY!r})\n"
            f"s = ort.InferenceSession({str(model)!r}, so, providers=['CPUExecutionProvider'])\n"
            "sys.stdout.buffer.write(s.run(None, {})[0].tobytes())\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("ONNX_UDC_")}
        return subprocess.run([sys.executable, "-c", code], env={**env, **env_extra}, capture_output=True, timeout=120)

    low = {"ONNX_UDC_MAX_OUTPUT_BYTES": str(n - 1), "ONNX_UDC_DECODE_THREADS": "2"}
    failed = run(low, {})
    assert failed.returncode != 0 and b"LIMIT_EXCEEDED" in failed.stderr
    ok = run(low, {"onnx_udc.max_output_bytes": "0"})  # the session entry wins
    assert ok.returncode == 0, ok.stderr.decode()
    assert ok.stdout == F32_BYTES
    bad = run({"ONNX_UDC_DECODE_THREADS": "many"}, {})
    assert bad.returncode != 0 and b"ONNX_UDC_DECODE_THREADS" in bad.stderr


# ---- the Python binding (NativeDecoder.decode) and the fast loader's parallelism -----------

def test_native_decoder_threads_and_cap():
    from onnx_udc.errors import LimitError
    from onnx_udc.native import NativeDecoder

    decoder = NativeDecoder(LIBRARY)
    for name in GOLDEN_NAMES:
        blob = (GOLDEN / f"{name}.blob").read_bytes()
        want = (GOLDEN / f"{name}.bin").read_bytes()
        for threads in (0, 1, 3):
            assert decoder.decode(blob, threads=threads).tobytes() == want
        assert decoder.decode(blob, max_output_bytes=len(want)).tobytes() == want
        if want:
            with pytest.raises(LimitError, match="LIMIT_EXCEEDED"):
                decoder.decode(blob, threads=1, max_output_bytes=len(want) - 1)
    with pytest.raises(ValueError):
        decoder.decode(blob, threads=-1)


@pytest.mark.parametrize("blobs, cpus", [(0, 4), (1, 1), (1, 16), (3, 16), (16, 16), (40, 16), (5, 2), (7, 3)])
def test_decode_parallelism_never_oversubscribes(blobs, cpus):
    from onnx_udc.load.session import decode_parallelism

    workers, threads = decode_parallelism(blobs, cpus)
    assert workers >= 1 and threads >= 1
    assert workers * threads <= cpus
    assert workers == max(1, min(blobs, cpus))
    assert threads == max(1, cpus // workers)


def test_prepare_fast_decodes_each_blob_with_its_thread_share(monkeypatch):
    """prepare_fast hands every blob threads = cpus // workers, and keeps the bytes."""
    from onnx import TensorProto, helper, numpy_helper

    from onnx_udc.load import session as session_module
    from onnx_udc.native import NativeDecoder

    f32 = [e for e in json.loads((GOLDEN / "manifest.json").read_text()) if e["dtype"] == "float32"][:3]
    inits, nodes, outputs = [], [], []
    for i, entry in enumerate(f32):
        blob = np.frombuffer((GOLDEN / f"{entry['name']}.blob").read_bytes(), dtype=np.uint8)
        inits.append(numpy_helper.from_array(blob, f"W{i}__udc_blob"))
        nodes.append(helper.make_node("Decode", [f"W{i}__udc_blob"], [f"W{i}"], domain="ai.onnx_udc"))
        nodes.append(helper.make_node("Identity", [f"W{i}"], [f"Y{i}"]))
        outputs.append(helper.make_tensor_value_info(f"Y{i}", TensorProto.FLOAT, None))
    model = helper.make_model(helper.make_graph(nodes, "g", [], outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx_udc", 1)])

    seen = []

    class Recording(NativeDecoder):
        def decode(self, blob, threads=0, max_output_bytes=0):
            seen.append(threads)
            return super().decode(blob, threads=threads, max_output_bytes=max_output_bytes)

    monkeypatch.setattr(session_module.os, "cpu_count", lambda: 8)
    _, dense = session_module.prepare_fast(model, Recording(LIBRARY))
    assert seen == [8 // 3] * 3  # 3 workers on 8 CPUs: 2 threads each
    for i, entry in enumerate(f32):
        assert dense[f"W{i}"].tobytes() == (GOLDEN / f"{entry['name']}.bin").read_bytes()
