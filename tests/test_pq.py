"""Product quantization (FORMAT.md 4.7): format, both decoders, hostile params, fitting."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onnx_udc.fit import pq as pq_fit
from onnx_udc.graph.layers import axis_order, layer_type
from onnx_udc.codec import decode_blob, encode_tensor
from onnx_udc.errors import FormatError
from onnx_udc.format import BlobHeader, DType, QuantizerId, pack_blob, parse_blob
from onnx_udc.quantizers.pq import PQConfig, PQFit, PQParams, block_count, from_blocks, to_blocks


def _fit(rng, shape, order, d, k):
    numel = int(np.prod(shape))
    table = rng.standard_normal((k, d)).astype(np.float16)
    return PQFit(order=order, d=d, centroids=table, indices=rng.integers(0, k, block_count(numel, d)))


def _blob(fit, shape, dtype=np.float32, coder="store"):
    return encode_tensor(np.zeros(shape, dtype), "pq", coder, PQConfig(fit=fit)).blob


def _native(library):
    from onnx_udc.native import NativeDecoder

    return NativeDecoder(library)


def _expected(fit, shape, dtype):
    """Straightforward per-element decoder, independent of from_blocks' reshapes."""
    numel = int(np.prod(shape))
    stream = np.concatenate([fit.centroids[i] for i in fit.indices])[:numel] if numel else np.zeros(0, np.float16)
    tshape = tuple(shape[a] for a in fit.order)
    return np.transpose(stream.reshape(tshape), np.argsort(fit.order)).astype(dtype)


shapes = st.lists(st.integers(1, 6), min_size=0, max_size=4).map(tuple)


@settings(max_examples=60, deadline=None)
@given(shape=shapes, data=st.data())
def test_python_and_native_decoders_agree(shape, data, library):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    order = tuple(data.draw(st.permutations(range(len(shape)))))
    d = data.draw(st.integers(1, 12))
    k = data.draw(st.sampled_from([1, 2, 7, 256, 257, 600]))
    dtype = data.draw(st.sampled_from([np.float32, np.float16]))
    fit = _fit(rng, shape, order, d, k)
    blob = _blob(fit, shape, dtype, data.draw(st.sampled_from(["store", "brotli"])))
    header, _ = parse_blob(blob)
    assert header.symbol_width == (1 if k <= 256 else 2)
    want = _expected(fit, shape, dtype)
    py = decode_blob(blob)
    assert py.shape == shape and py.dtype == dtype and py.tobytes() == want.tobytes()
    assert _native(library).decode(blob).tobytes() == want.tobytes()


def test_blocks_round_trip_with_padding():
    w = np.arange(35, dtype=np.float32).reshape(7, 5)
    blocks = to_blocks(w, (1, 0), 4)  # [9, 4], the last block holds 3 weights + 1 pad
    assert blocks.shape == (9, 4) and blocks[0].tolist() == [0, 5, 10, 15]
    assert np.array_equal(from_blocks(blocks, (7, 5), (1, 0)), w)


def test_large_tensor_decodes_identically_on_many_threads(library):
    rng = np.random.default_rng(3)
    fit = _fit(rng, (96, 128, 3, 3), (0, 1, 2, 3), 9, 256)  # 110 592 blocks: parallel path
    blob = _blob(fit, (96, 128, 3, 3), coder="brotli")
    assert _native(library).decode(blob).tobytes() == decode_blob(blob).tobytes()


# ---- hostile blobs ----------------------------------------------------------------------
def _with(blob, **changes):
    header, payload = parse_blob(blob)
    fields = {f: getattr(header, f) for f in ("quantizer", "coder", "dtype", "shape", "symbol_width", "step", "seed", "params")}
    payload = bytes(changes.pop("payload", payload))
    fields.update(changes)
    return pack_blob(BlobHeader(**fields), payload)


def _status(fn, blob):
    with pytest.raises(FormatError) as err:
        fn(blob)
    return err.value.status


def _good():
    return _blob(_fit(np.random.default_rng(1), (4, 6), (1, 0), 3, 5), (4, 6))


def _params(order=(1, 0), d=3, k=5, tail=0, table_len=None):
    table = bytes(2 * k * d if table_len is None else table_len)
    return bytes(order) + struct.pack("<HIB", d, k, tail) + table


@pytest.mark.parametrize(
    "changes",
    [
        {"params": _params(order=(0, 0))},
        {"params": _params(order=(1, 2))},
        {"params": _params(d=0, table_len=30)},
        {"params": _params(k=0, table_len=30)},
        {"params": _params(k=70000, table_len=30)},
        {"params": _params(tail=1)},
        {"params": _params(table_len=29)},
        {"params": _params(table_len=31)},
        {"params": b"\x01\x00\x03"},
        {"params": b""},
        {"symbol_width": 2},
        {"step": 0.5},
        {"seed": 3},
        {"dtype": DType.INT8},
    ],
    ids=lambda c: next(iter(c)) + ":" + repr(c[next(iter(c))])[:24],
)
def test_bad_header_in_both_decoders(changes, library):
    blob = _with(_good(), **changes)
    assert _status(decode_blob, blob) == "BAD_HEADER"
    assert _status(_native(library).decode, blob) == "BAD_HEADER"


def test_index_not_below_k_is_a_corrupt_payload(library):
    header, payload = parse_blob(_good())
    bad = bytearray(payload)
    bad[5] = 5  # k = 5: indices 0..4
    blob = _with(_good(), payload=bytes(bad))
    assert _status(decode_blob, blob) == "CORRUPT_PAYLOAD"
    assert _status(_native(library).decode, blob) == "CORRUPT_PAYLOAD"


def test_payload_holds_one_symbol_per_block():
    header, payload = parse_blob(_good())  # 24 weights in blocks of 3, store coder
    assert len(payload) == 8 and header.quantizer == QuantizerId.PQ


def test_params_pack_parse_round_trip():
    table = np.arange(12, dtype=np.float16).reshape(3, 4)
    p = PQParams(order=(2, 0, 1), d=4, centroids=table)
    header = BlobHeader(quantizer=5, coder=0, dtype=DType.FLOAT, shape=(2, 3, 2), symbol_width=1, params=p.pack())
    from onnx_udc.quantizers.pq import parse_params

    q = parse_params(header)
    assert q.order == (2, 0, 1) and q.d == 4 and q.k == 3 and np.array_equal(q.centroids, table)


# ---- fitting ----------------------------------------------------------------------------
def test_kmeans_fallback_objective_decreases_and_blob_decodes():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    fit, report = pq_fit.fit_weights_traced(w, PQConfig(iterations=8), role="conv")
    trace = report.trace
    assert fit.d == 9 and fit.centroids.shape == (128, 9) and not trace.output_aware  # k <= blocks / 4
    obj = trace.objective[:-1]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(obj, obj[1:]))
    out = decode_blob(encode_tensor(w, "pq", "brotli", PQConfig(fit=fit)).blob)
    assert np.allclose(out, from_blocks(fit.centroids[fit.indices].astype(np.float32), w.shape, fit.order))
    assert np.mean((out - w) ** 2) < np.mean(w**2)


def test_output_aware_em_beats_kmeans_on_the_output_error():
    rng = np.random.default_rng(1)
    k_in, n_out = 64, 96
    w = rng.standard_normal((k_in, n_out)).astype(np.float32)  # MatMul B [K, N]
    scales = np.exp(rng.standard_normal(k_in) * 1.5)  # anisotropic inputs
    x = rng.standard_normal((2000, k_in)) * scales
    cfg = PQConfig(k=64, iterations=10)
    plain = pq_fit.fit_weights(w, cfg, role="matmul_b")
    aware, report = pq_fit.fit_weights_traced(w, cfg, role="matmul_b", gram=(x.T @ x)[None], refine=20)
    trace = report.trace
    assert trace.output_aware and aware.d == 4 and aware.order == (1, 0)
    assert report.refine[-1] < report.refine[0]  # fine-tuning lowers the full output error

    def out_err(fit):
        w_hat = from_blocks(fit.centroids[fit.indices].astype(np.float64), w.shape, fit.order)
        return float(np.sum((x @ (w - w_hat)) ** 2))

    assert out_err(aware) < 0.8 * out_err(plain)
    obj = trace.objective[:-1]
    assert obj[-1] <= obj[0]


def test_empty_clusters_are_reseeded():
    blocks = np.repeat(np.eye(4)[:2], 50, axis=0)  # 2 distinct blocks, k = 8
    c, idx, trace = pq_fit.fit_blocks(blocks, 8, 3)
    assert trace.reseeded > 0 and set(np.unique(idx)) <= set(range(8))


def test_block_and_layer_choices():
    assert layer_type("conv", (8, 4, 3, 3)) == "conv3x3"
    assert layer_type("conv", (8, 4, 1, 1)) == "conv1x1"
    assert layer_type("matmul_b", (8, 4)) == "matmul"
    assert pq_fit.choose_block(9, 25) == 5 and pq_fit.choose_block(4, 384) == 4 and pq_fit.choose_block(4, 7) == 4
    assert axis_order("matmul_b", (3, 5)) == (1, 0) and axis_order("conv", (1, 2, 3, 3)) == (0, 1, 2, 3)


# ---- activations ------------------------------------------------------------------------
def _conv_model(w, b_mat, group, strides, pads, dilations):
    from onnx import TensorProto, helper, numpy_helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 9, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, [None] * 4)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], group=group, strides=strides, pads=pads, dilations=dilations),
        helper.make_node("Relu", ["y"], ["r"]),
        helper.make_node("MatMul", ["r", "b"], ["z"]),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y, z], [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b_mat, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def test_im2col_rows_reproduce_the_convolution_and_probe_grams():
    import onnxruntime as ort

    from onnx_udc.fit.activations import ActivationProbe, conv_rows

    rng = np.random.default_rng(5)
    w = rng.standard_normal((6, 2, 3, 2)).astype(np.float32)  # group 2: I/g = 2
    b_mat = rng.standard_normal((7, 3)).astype(np.float32)  # MatMul over the last axis (ow = 7)
    model = _conv_model(w, b_mat, 2, [2, 1], [1, 0, 2, 1], [1, 2])
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    y = sess.run(["y"], {"x": x})[0]  # [2, 6, oh, ow]
    probe = ActivationProbe(model, ["w", "b"])
    c = probe.consumers["w"]
    rows = conv_rows(x.astype(np.float64), c, 10**9, np.random.default_rng(0))  # [2, N*oh*ow, 12]
    wt = w.reshape(2, 3, 12).astype(np.float64)  # [g, O/g, I/g*kh*kw]
    mine = np.einsum("grk,gok->rgo", rows, wt).reshape(2, y.shape[2], y.shape[3], 6).transpose(0, 3, 1, 2)
    assert np.allclose(mine, y, atol=1e-4)
    # the probe's Grams: conv input is x itself; MatMul input is relu(y), and with the
    # conv weight overridden by zeros it is zero
    stats = probe.stats([{"x": x}], ["w", "b"], max_rows=10**9)
    assert np.allclose(stats["w"].gram, np.einsum("grk,grl->gkl", rows, rows))
    r = np.maximum(y, 0).reshape(-1, y.shape[-1]).astype(np.float64)
    assert np.allclose(stats["b"].gram[0], r.T @ r, rtol=1e-5) and stats["b"].rows == r.shape[0]
    zero = probe.stats([{"x": x}], ["b"], overrides={"w": np.zeros_like(w)})
    assert not zero["b"].gram.any()


def test_grouped_metrics_and_refinement():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((8, 1, 3, 3))  # depthwise: 8 conv groups, K = 9
    x = rng.standard_normal((8, 500, 9)) * np.exp(rng.standard_normal((8, 1, 9)))
    gram = np.einsum("grk,grl->gkl", x, x)  # [8, 9, 9]
    h, groups = pq_fit.block_metrics(gram, 8, 3)  # G = 3 blocks per output
    assert h.shape == (24, 3, 3) and groups.tolist()[:6] == [0, 1, 2, 3, 4, 5]
    assert np.allclose(h[4], gram[1, 3:6, 3:6])
    fit, report = pq_fit.fit_weights_traced(w, PQConfig(k=4, block={"conv3x3": 3}), "conv", gram, refine=10)
    assert report.output_aware and report.refine[-1] <= report.refine[0] * 1.001


# ---- whole model ------------------------------------------------------------------------
def test_fit_model_bottom_up_and_compress(library):
    import onnx

    from onnx_udc.fit import pq_model
    from onnx_udc.fit.calib import CalibrationSet
    from onnx_udc import CompressConfig
    from onnx_udc.graph import decode_nodes
    from onnx_udc.native import NativeDecoder

    rng = np.random.default_rng(4)
    w = rng.standard_normal((32, 4, 3, 3)).astype(np.float32)
    b_mat = rng.standard_normal((8, 64)).astype(np.float32)
    model = _conv_model(w, b_mat, 1, [1, 1], [1, 1, 1, 1], [1, 1])
    onnx.checker.check_model(model)
    calib = CalibrationSet([{"x": rng.standard_normal((2, 4, 9, 8)).astype(np.float32)} for _ in range(2)], False, "test")
    cfg = PQConfig(k=16, iterations=4, block={"conv3x3": 9, "matmul": 4})
    assert [n for n, _ in pq_model.pq_layers(model, cfg, min_elements=256)] == ["w", "b"]
    fit = pq_model.fit_model(model, cfg, calib, refine=5, min_elements=256)
    assert list(fit.fits) == ["w", "b"] and all(l.output_aware for l in fit.layers) and not fit.warnings
    plain = pq_model.fit_model(model, cfg, None, min_elements=256)
    assert plain.warnings and not any(l.output_aware for l in plain.layers)
    compressed, report = pq_model.compress(model, fit, CompressConfig(min_elements=256))
    nodes = decode_nodes(compressed)
    assert len(nodes) == 2
    native = NativeDecoder(library)
    for node, blob in nodes:
        data = onnx.numpy_helper.to_array(blob).tobytes()
        assert parse_blob(data)[0].quantizer == QuantizerId.PQ
        assert native.decode(data).tobytes() == decode_blob(data).tobytes()


def test_calibration_from_an_image_folder(tmp_path):
    import json

    from onnx import TensorProto, helper
    from PIL import Image

    from onnx_udc.fit.calib import calibration_set

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 6, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3, 6, 5])
    model = helper.make_model(helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y]))
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / f"img{i}.png")
    Image.new("RGB", (5, 6), (255, 0, 51)).save(tmp_path / "plain.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "preprocess.json").write_text(json.dumps({"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}))
    calib = calibration_set(model, tmp_path, samples=6)
    assert not calib.synthetic and calib.samples == 6
    feeds = np.concatenate([b["x"] for b in calib.batches])
    assert feeds.shape == (6, 3, 6, 5) and feeds.dtype == np.float32
    plain = feeds[5]  # "plain.png" sorts last: (255, 0, 51) -> (1, -1, -0.6)
    assert np.allclose(plain[:, 2, 2], [1.0, -1.0, 51 / 255 * 2 - 1], atol=1e-6)


def test_cli_pq(tmp_path, capsys):
    import onnx

    from onnx_udc.cli import main

    rng = np.random.default_rng(6)
    model = _conv_model(rng.standard_normal((32, 4, 3, 3)).astype(np.float32),
                        rng.standard_normal((8, 64)).astype(np.float32), 1, [1, 1], [1, 1, 1, 1], [1, 1])
    src, out = tmp_path / "m.onnx", tmp_path / "m.pq.onnx"
    onnx.save_model(model, str(src))
    np.savez(tmp_path / "calib.npz", x=rng.standard_normal((4, 4, 9, 8)).astype(np.float32))
    # the model's input has a fixed batch of 2: two batches, the second held out for the fidelity check
    args = ["compress", str(src), "-o", str(out), "--quantizer", "pq", "--pq-k", "16", "--pq-iterations", "3",
            "--pq-refine", "3", "--pq-rounds", "2", "--min-elements", "256", "--calib", str(tmp_path / "calib.npz"),
            "--calib-samples", "4", "-q"]
    code = main(args)
    err = capsys.readouterr().err
    # k=16 on this random net cannot keep the default target (every output within 30 dB): refused, nothing written
    assert code == 6 and not out.exists() and "fidelity target missed" in err and err.count("\n") == 1, err
    code = main(args + ["--allow-miss"])
    captured = capsys.readouterr()
    assert code == 0 and out.exists() and "written anyway" in captured.err, captured.err
    code = main(["compress", str(src), "-o", str(out), "--quantizer", "pq", "--pq-k", "16", "--pq-iterations", "3",
                 "--pq-target", "output", "--min-elements", "256", "--calib", str(tmp_path / "calib.npz"),
                 "--calib-samples", "4", "-q", "--allow-miss"])
    assert code == 0, capsys.readouterr().err
    code = main(["compress", str(src), "-o", str(out), "--quantizer", "pq", "--pq-target", "output", "-q"])
    assert code == 2 and "--pq-target output needs" in capsys.readouterr().err
    code = main(["compress", str(src), "-o", str(out), "--quantizer", "pq", "--pq-block", "conv3x3=x", "-q"])
    assert code == 2 and "--pq-block" in capsys.readouterr().err
    code = main(["compress", str(src), "-o", str(out), "--quantizer", "pq", "--min-elements", "256"])
    assert code == 2 and "--calib" in capsys.readouterr().err  # a fidelity target needs data
    code = main(["compress", str(src), "-o", str(out), "--quantizer", "pq", "--min-elements", "256", "--calib",
                 "synthetic", "--allow-miss"])
    assert code == 0 and "plain k-means" in capsys.readouterr().err


@pytest.mark.parametrize("groups", [1, 4])
def test_full_error_reassignment_never_increases_the_error(groups):
    rng = np.random.default_rng(7 + groups)
    o, kdim, d, k = 8, 12, 3, 6
    wt = rng.standard_normal((o, kdim))
    x = rng.standard_normal((groups, 300, kdim)) @ rng.standard_normal((kdim, kdim))  # correlated inputs
    gram = np.einsum("grk,grl->gkl", x, x)
    c = rng.standard_normal((k, d))
    idx = rng.integers(0, k, o * kdim // d)
    before = pq_fit.output_error(wt, c[idx].reshape(o, kdim), gram)
    new = pq_fit.reassign_full(wt, c, idx, gram, sweeps=2)
    after = pq_fit.output_error(wt, c[new].reshape(o, kdim), gram)
    assert after <= before * (1 + 1e-12) and after < before


def test_rounds_lower_the_output_error():
    rng = np.random.default_rng(8)
    w = rng.standard_normal((48, 32)).astype(np.float32)  # MatMul [K, N]
    x = rng.standard_normal((800, 48)) @ rng.standard_normal((48, 48))
    gram = (x.T @ x)[None]
    cfg = PQConfig(k=16, iterations=5)
    one, r1 = pq_fit.fit_weights_traced(w, cfg, "matmul_b", gram, refine=10, rounds=1)
    three, r3 = pq_fit.fit_weights_traced(w, cfg, "matmul_b", gram, refine=10, rounds=3)
    assert r3.refine[-1] < r1.refine[-1]


def test_empty_tensor(library):
    fit = PQFit(order=(1, 0), d=4, centroids=np.ones((3, 4), np.float16), indices=np.zeros(0, np.int64))
    blob = _blob(fit, (0, 5), coder="brotli")
    assert decode_blob(blob).shape == (0, 5) and _native(library).decode(blob).shape == (0, 5)


def test_split_batch():
    from onnx_udc.fit.activations import split_batch

    batch = {"a": np.zeros((130, 3)), "b": np.ones((130,))}
    pieces = split_batch(batch, 64)
    assert [len(p["a"]) for p in pieces] == [64, 64, 2] and [len(p["b"]) for p in pieces] == [64, 64, 2]
    assert split_batch({"a": np.zeros((130, 3)), "b": np.zeros((5,))}, 64)[0]["a"].shape == (130, 3)


def test_api_pq_toward_the_outputs_needs_calibration():
    """Through the API too (the pipeline's own check looked at the synthesized set, never None)."""
    from onnx_udc.errors import ConfigError
    from onnx_udc.pipeline import CompressSpec, PQSpec

    with pytest.raises(ConfigError, match="needs calibration"):
        CompressSpec(pq=PQSpec(target="output"))
