"""Product quantization as a per-tensor choice of the rate allocation (fit.candidates), and the
whole-model PQ plans the pipeline compares with it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import modelzoo
from onnx_udc.codec import decode_blob, pack, parse_blob
from onnx_udc.fit.allocate import Target
from onnx_udc.fit.calib import CalibrationSet
from onnx_udc.fit.candidates import effective_power, pq_candidates
from onnx_udc.format.blob import QuantizerId
from onnx_udc.graph import decode_nodes
from onnx_udc.pipeline import CompressSpec, compress
from onnx_udc.pipeline.compress import auto_methods
from onnx_udc.quantizers.pq import to_blocks


def _feeds(n=128, seed=1):
    rng = np.random.default_rng(seed)
    return [{"input": rng.standard_normal((16, 1, 28, 28)).astype(np.float32)} for _ in range(n // 16)]


def _clustered_cnn(seed=0):
    """modelzoo.cnn with conv2's 3x3 kernels drawn from 8 prototypes (plus 1e-4 noise):
    product quantization codes it almost exactly at ~0.4 bits per weight, which no step
    quantizer comes near at the same noise."""
    model = modelzoo.cnn(seed, channels=32)
    rng = np.random.default_rng(seed + 7)
    init = next(i for i in model.graph.initializer if i.name == "conv2.w")
    w = numpy_helper.to_array(init)
    protos = rng.standard_normal((8, 3, 3)) * 0.1
    kernels = protos[rng.integers(0, 8, size=w.shape[:2])] + rng.standard_normal(w.shape) * 1e-4
    init.CopyFrom(numpy_helper.from_array(kernels.astype(np.float32), "conv2.w"))
    return model


def test_effective_power_of_white_noise_is_its_power():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((64, 32, 3, 3))
    x = rng.standard_normal((4096, 288)) * rng.uniform(0.1, 3.0, size=288)  # anisotropic inputs
    gram = (x.T @ x)[None]  # [1, K, K]
    p = 1e-3
    noisy = w + rng.standard_normal(w.shape) * np.sqrt(p)
    order = (0, 1, 2, 3)
    assert effective_power(w, noisy, order, 9, gram) == pytest.approx(p, rel=0.1)
    # the same power along the least excited inputs only counts far less
    weak = np.argsort(np.diag(gram[0]))[:32]
    shaped = to_blocks(w, order, 9).reshape(64, 288).copy()
    shaped[:, weak] += rng.standard_normal((64, 32)) * np.sqrt(p * 288 / 32)
    assert effective_power(w, shaped.reshape(w.shape), order, 9, gram) < 0.3 * p


def test_candidates_are_fitted_with_their_real_size():
    from onnx_udc import CompressConfig

    model = _clustered_cnn()
    calib = CalibrationSet(_feeds(64), False, "test")
    cands = pq_candidates(model, ["conv2.w"], calib, CompressConfig(min_elements=256))
    assert list(cands) == ["conv2.w"] and cands.seconds > 0
    (small, *_rest) = cands["conv2.w"]
    assert small.method == "pq" and small.label.startswith("pq d9 k")
    blob = pack(small.quantized).blob  # what the encoder writes, with the default coder
    assert small.blob_bytes == len(blob)
    assert small.power < 1e-6  # the clustered kernels are nearly exact
    assert decode_blob(blob).tobytes() == small.decoded.tobytes()


def test_allocation_chooses_pq_where_it_pays_and_decoders_agree(library):
    from onnx_udc import CompressConfig
    from onnx_udc.native import NativeDecoder

    model = _clustered_cnn()
    target = Target("sqnr", 15.0)  # low rates: the allocation asks for candidates (CANDIDATE_MAX_BITS)
    spec = CompressSpec(config=CompressConfig(min_elements=256), target=target, calib=_feeds(128),
                        methods=auto_methods(target))
    res = compress(model, spec)
    assert res.verification is not None and res.verification.passed
    plan = {t.name: t.quantizer for t in res.allocation.tensors} if res.allocation else {}
    pq_blobs = [(n, b) for n, b in decode_nodes(res.model)
                if parse_blob(numpy_helper.to_array(b).tobytes())[0].quantizer == QuantizerId.PQ]
    assert pq_blobs and plan["conv2.w"].startswith("pq d9"), f"conv2.w not coded by pq (plan: {plan})"
    native = NativeDecoder(library)
    for _node, blob in pq_blobs:
        data = numpy_helper.to_array(blob).tobytes()
        assert native.decode(data).tobytes() == decode_blob(data).tobytes()
    # the scalar-only allocation of the same target is larger
    scalar = compress(model, CompressSpec(config=spec.config, target=target, calib=_feeds(128),
                                          methods=auto_methods(None)))
    assert res.model.ByteSize() < scalar.model.ByteSize()
    onnx.checker.check_model(res.model)


def test_pq_among_methods_needs_a_fidelity_target():
    from onnx_udc.errors import ConfigError

    with pytest.raises(ConfigError, match="fidelity target"):
        CompressSpec(target=Target("ratio", 4.0), calib=_feeds(32), methods=("scalar", "pq"))
    assert "pq" not in auto_methods(Target("ratio", 4.0)) and "pq" in auto_methods(Target("sqnr", 30.0))
