"""The C++ library inside onnxruntime: parity with the Python reference, errors, edge check."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper

import modelzoo
from onnx_udc import CompressConfig, FormatError, InferenceSession, compress_model, decode_blob, decompress_model
from onnx_udc.graph import blob_bytes, decode_nodes
from onnx_udc import NativeDecoder, session_options

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "runtime" / "build"

pytestmark = pytest.mark.usefixtures("library")


def expose_decoded(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make every decode output a graph output, to read what the custom op produced."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    vi = {v.name: v for v in out.graph.value_info}
    for node, _ in decode_nodes(out):
        out.graph.output.append(vi[node.output[0]])
    return out


def feeds_for(model, batch=4):
    rng = np.random.default_rng(0)
    inp = model.graph.input
    out = {}
    for v in inp:
        t = v.type.tensor_type
        shape = [d.dim_value or batch for d in t.shape.dim]
        if t.elem_type == onnx.TensorProto.BOOL:
            out[v.name] = np.array(True)
        else:
            out[v.name] = rng.random(shape, dtype=np.float32).astype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type))
    return out


MODELS = modelzoo.SHAPES


@pytest.mark.parametrize("name", MODELS)
def test_four_decoders_give_identical_bytes(name, library):
    model = MODELS[name]()
    compressed, report = compress_model(model, CompressConfig(min_elements=256, seed=11))
    assert report.tensors
    dense = {i.name: onnx.numpy_helper.to_array(i) for i in decompress_model(compressed).graph.initializer}
    session = ort.InferenceSession(expose_decoded(compressed).SerializeToString(), session_options(),
                                   providers=["CPUExecutionProvider"])
    names = [node.output[0] for node, _ in decode_nodes(compressed)]
    kernel = dict(zip(names, session.run(names, feeds_for(compressed))))
    native = NativeDecoder(library)
    for node, blob in decode_nodes(compressed):
        data = blob_bytes(blob)
        reference = decode_blob(data).tobytes()
        assert native.decode(data).tobytes() == reference, "C entry point"
        assert dense[node.output[0]].tobytes() == reference, "onnx-udc decompress"
        assert kernel[node.output[0]].tobytes() == reference, "custom op inside onnxruntime"


@pytest.mark.parametrize("name", MODELS)
def test_fast_loader_equals_dense_model_exactly(name):
    compressed, _ = compress_model(MODELS[name](), CompressConfig(min_elements=256))
    dense = decompress_model(compressed)
    feeds = feeds_for(compressed)
    want = ort.InferenceSession(dense.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)
    fast = InferenceSession(compressed).run(None, feeds)
    for w, f in zip(want, fast):
        assert np.array_equal(w, f)
    # The portable path's weights are not constants, so onnxruntime cannot fold or fuse
    # them (e.g. QDQ -> integer MatMul): compare with the dense model unoptimized.
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = ort.InferenceSession(dense.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, feeds)
    portable = InferenceSession(compressed, fast=False).run(None, feeds)
    for w, p in zip(plain, portable):
        np.testing.assert_allclose(p, w, rtol=1e-5, atol=1e-5)


def test_portable_path_from_plain_onnxruntime(tmp_path, library):
    """What any onnxruntime user does: register the library, run the file as is."""
    compressed, _ = compress_model(modelzoo.cnn(channels=32))
    path = tmp_path / "m.onnx"
    onnx.save_model(compressed, str(path))
    so = ort.SessionOptions()
    so.register_custom_ops_library(library)
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out = session.run(None, feeds_for(compressed))[0]
    assert out.shape == (4, 10) and np.isfinite(out).all()


def _corrupted(mutate):
    compressed, _ = compress_model(modelzoo.cnn(channels=32))
    _, init = decode_nodes(compressed)[0]
    init.raw_data = mutate(init.raw_data)
    init.dims[:] = [len(init.raw_data)]
    return compressed


@pytest.mark.parametrize(
    "mutate,status",
    [
        (lambda b: b[:-7], "TRUNCATED"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 0x10]), "CHECKSUM_MISMATCH"),
        (lambda b: b"XXXX" + b[4:], "BAD_MAGIC"),
    ],
)
def test_corrupt_blob_fails_session_creation_cleanly(mutate, status):
    model = _corrupted(mutate)
    for fast in (False, True):
        with pytest.raises(FormatError) as info:
            InferenceSession(model, fast=fast)
        assert status in str(info.value) or info.value.status == status


def test_dtype_mismatch_is_rejected():
    compressed, _ = compress_model(modelzoo.mlp(dtype=np.float16))
    node, _ = decode_nodes(compressed)[0]
    node.op_type = "Decode"  # float32 op fed a float16 blob
    with pytest.raises(Exception, match="(?i)dtype|type"):
        InferenceSession(compressed, fast=False)


def test_library_exports_and_dependencies(library):
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("binutils not installed")
    symbols = subprocess.run([nm, "-D", "--defined-only", library], capture_output=True, text=True, check=True).stdout
    exported = {line.split()[-1] for line in symbols.splitlines() if line.split()[-2] in ("T", "D", "B", "W")}
    assert "RegisterCustomOps" in exported
    assert all(s == "RegisterCustomOps" or s.startswith("udc_") for s in exported), exported
    needed = subprocess.run(["readelf", "-d", library], capture_output=True, text=True, check=True).stdout
    assert "onnxruntime" not in needed and "brotli" not in needed


def test_constant_node_weights_run_in_both_paths():
    model = modelzoo.constants()
    compressed, report = compress_model(model)
    assert len(report.tensors) == 3
    dense = decompress_model(compressed)
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    for cond in (True, False):
        feeds = {"cond": np.array(cond), "x": x}
        want = ort.InferenceSession(dense.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
        for fast in (True, False):
            got = InferenceSession(compressed, fast=fast).run(None, feeds)[0]
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
