"""The CUDA decoder's path (runtime/src/cuda, core/reconstruct.h) and its host twin.

Everywhere: the element-parallel reconstruction the GPU runs, executed on the host
(``udc_decode_units``), gives the golden bytes and the CPU decoder's bytes for random
blobs of every quantizer. That checks every formula, walk and table lookup the kernel
runs, on machines without a GPU. Where a CUDA device and onnxruntime's CUDA provider are
present, the same blobs are decoded on the GPU and compared byte for byte; elsewhere those
tests are skipped with the reason the library reports."""

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from onnx_udc import encode_tensor, quantizers
from onnx_udc.errors import DeviceError
from onnx_udc.quantizers.lattice import LatticeConfig
from onnx_udc.quantizers.pq import PQConfig, PQFit, block_count
from onnx_udc.quantizers.scalar_channel import ChannelConfig

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = json.loads((GOLDEN / "manifest.json").read_text())
DTYPES = {"float32": np.float32, "float16": np.float16, "int8": np.int8, "uint8": np.uint8, "int32": np.int32}


@pytest.fixture(scope="module")
def native(library):
    from onnx_udc.native import NativeDecoder

    return NativeDecoder(library)


@pytest.fixture(scope="module")
def gpu(native):
    reason = native.cuda_unavailable_reason()
    if reason is not None:
        pytest.skip(f"no CUDA device for the GPU decoder: {reason}")
    return native


def _golden(case):
    return (GOLDEN / f"{case['name']}.blob").read_bytes(), (GOLDEN / f"{case['name']}.bin").read_bytes()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_units_give_the_golden_bytes(native, case):
    blob, expected = _golden(case)
    assert native.decode_units(blob).tobytes() == expected


def _random_blob(data) -> bytes:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="rng"))
    ndim = data.draw(st.integers(1, 4), label="ndim")
    shape = tuple(data.draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim), label="shape"))
    kind = data.draw(st.sampled_from(quantizers.names()), label="kind")  # every registered quantizer
    dtype = data.draw(st.sampled_from([np.float32, np.float16]), label="dtype")
    w = (rng.standard_normal(shape) * data.draw(st.sampled_from([0.01, 1.0, 300.0]))).astype(dtype)
    order = tuple(int(a) for a in rng.permutation(ndim))
    if kind == "raw":
        raw_dtype = data.draw(st.sampled_from([np.float32, np.float16, np.int8, np.uint8, np.int32]), label="raw")
        return encode_tensor(w.astype(raw_dtype), "raw", "store").blob
    if kind == "pq":
        d, k = data.draw(st.integers(1, 9), label="d"), data.draw(st.sampled_from([1, 5, 256, 300]), label="k")
        fit = PQFit(order=order, d=d, centroids=rng.standard_normal((k, d)).astype(np.float16),
                    indices=rng.integers(0, k, block_count(w.size, d)))
        return encode_tensor(w, "pq", "store", PQConfig(fit=fit)).blob
    step_rel = data.draw(st.sampled_from([0.001, 0.3, 3.0]), label="step_rel")
    if kind == "scalar_channel":  # one step per channel along any axis, no codeword table
        # channel scales 1 .. 1e-4 (the first at 1, so a float16 tensor never flushes to all zeros)
        w = (w * np.logspace(0, -4, shape[0]).reshape((-1,) + (1,) * (ndim - 1))).astype(dtype)
        config = ChannelConfig(step_rel=step_rel, axis=data.draw(st.integers(0, ndim - 1), label="axis"))
        return encode_tensor(w, kind, data.draw(st.sampled_from(["store", "brotli"]), label="coder"), config,
                             seed=data.draw(st.integers(0, 2**64 - 1), label="seed")).blob
    refine = data.draw(st.booleans(), label="refine")
    if kind not in quantizers.lattices():
        config = LatticeConfig(step_rel=step_rel, refine=refine)  # scalar reads step_rel and refine
    else:
        config = LatticeConfig(step_rel=step_rel, refine=refine, axis_order=order)
    coder = data.draw(st.sampled_from(["store", "brotli", "rans"]), label="coder")
    return encode_tensor(w, kind, coder, config, seed=data.draw(st.integers(0, 2**64 - 1), label="seed")).blob


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_units_match_the_cpu_decoder(native, data):
    blob = _random_blob(data)
    assert native.decode_units(blob).tobytes() == native.decode(blob).tobytes()


def test_units_reject_what_the_decoder_rejects(native):
    blob = bytearray(_golden(CASES[0])[0])
    blob[-1] ^= 0xFF
    with pytest.raises(Exception, match="CHECKSUM_MISMATCH"):
        native.decode_units(bytes(blob))


def test_cuda_entry_points_report_unavailable_cleanly(native):
    reason = native.cuda_unavailable_reason()
    if reason is None:
        pytest.skip("a CUDA device is present: covered by the GPU tests")
    assert native.cuda_device_count() == 0
    with pytest.raises(DeviceError, match="UNAVAILABLE") as info:
        native.decode_cuda(_golden(CASES[0])[0])
    assert info.value.status == "UNAVAILABLE"


# ---- on a GPU -----------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_gpu_gives_the_golden_bytes(gpu, case):
    blob, expected = _golden(case)
    out, _ = gpu.decode_cuda(blob)
    assert out.tobytes() == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_gpu_matches_the_cpu_decoder(gpu, data):
    blob = _random_blob(data)
    assert gpu.decode_cuda(blob)[0].tobytes() == gpu.decode(blob).tobytes()


def _decode_model(blob: bytes, dtype) -> onnx.ModelProto:
    """blob initializer -> ai.onnx_udc decode op -> Identity -> output."""
    from onnx_udc.format import DType

    dt = DType.from_numpy(np.dtype(dtype))
    code = int(dt)
    init = helper.make_tensor("blob", TensorProto.UINT8, [len(blob)], blob, raw=True)
    nodes = [helper.make_node(dt.op_type, ["blob"], ["w"], domain="ai.onnx_udc"),
             helper.make_node("Identity", ["w"], ["out"])]
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("out", code, None)], [init])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx_udc", 1)],
                             ir_version=10)


@pytest.fixture(scope="module")
def cuda_ort(gpu):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"this onnxruntime ({ort.__version__}) has no CUDAExecutionProvider")
    return gpu


@pytest.mark.parametrize("case", [c for c in CASES if c["dtype"] in DTYPES], ids=lambda c: c["name"])
def test_cuda_provider_runs_the_decode_op_on_the_gpu(cuda_ort, library, case):
    blob, expected = _golden(case)
    options = ort.SessionOptions()
    options.register_custom_ops_library(library)
    options.add_session_config_entry("session.disable_cpu_ep_fallback", "1")  # every node on the GPU
    model = _decode_model(blob, DTYPES[case["dtype"]])
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CUDAExecutionProvider"])
    for _ in range(2):  # the cached tensor is copied on every run
        assert session.run(None, {})[0].tobytes() == expected


def test_fast_loader_accepts_cuda_providers(library, tmp_path):
    """CUDA providers go to onnxruntime as given: on a CPU-only onnxruntime it falls back to
    the CPU with its own warning; the outputs equal a CPU-only session's."""
    import warnings

    from onnx_udc import InferenceSession, compress_model

    model = onnx.load(str(Path(__file__).resolve().parents[1] / "models" / "fashion_mnist" / "resnet20_fmnist.onnx"))
    compressed, _ = compress_model(model)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    name = model.graph.input[0].name
    reference = InferenceSession(compressed).run(None, {name: x})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDAExecutionProvider is not in available provider names"
        for fast in (True, False):
            session = InferenceSession(compressed, providers=["CUDAExecutionProvider", "CPUExecutionProvider"], fast=fast)
            np.testing.assert_allclose(session.run(None, {name: x})[0], reference, rtol=1e-5, atol=1e-5)
