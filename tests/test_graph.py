"""The graph pass: selection, model invariants, round trip through decompress."""

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, numpy_helper

import modelzoo
from onnx_udc import CompressConfig, compress_model, decode_blob, decompress_model, select
from onnx_udc.format import BLOB_SUFFIX, DOMAIN
from onnx_udc.graph import Action, blob_bytes, decode_nodes
from onnx_udc.graph.modelio import load_model, save_model


def actions(model, **kw):
    return {c.name: c.action for c in select(model, **kw)}


def test_selection_is_by_role_and_size():
    got = actions(modelzoo.cnn(channels=32), min_elements=1024)
    assert got["conv2.w"] is Action.QUANTIZE  # 64x32x3x3
    assert got["conv1.w"] is Action.KEEP  # 288 elements
    assert got["flat_shape"] is Action.KEEP  # shape-like int64
    got = actions(modelzoo.cnn(channels=32), min_elements=1)
    assert got["flat_shape"] is Action.KEEP and got["conv1.b"] is Action.QUANTIZE


def test_int8_qdq_weight_is_lossless_never_requantized():
    model = modelzoo.qdq()
    assert actions(model)["Wq"] is Action.LOSSLESS
    compressed, report = compress_model(model)
    assert [t.action for t in report.tensors] == [Action.LOSSLESS]
    node, init = decode_nodes(compressed)[0]
    assert node.op_type == "DecodeInt8"
    original = numpy_helper.to_array(model.graph.initializer[0])
    assert decode_blob(blob_bytes(init)).tobytes() == original.tobytes()


def test_not_a_weight_stays():
    # A float initializer read by Reshape-like or unknown ops is never touched.
    model = modelzoo.mlp()
    model.graph.node.append(onnx.helper.make_node("CustomThing", ["W"], ["z"], domain="x.y"))
    assert actions(model)["W"] is Action.KEEP


def test_graph_input_initializer_is_kept():
    model = modelzoo.mlp()
    model.graph.input.append(onnx.helper.make_tensor_value_info("W", TensorProto.FLOAT, [64, 64]))
    assert actions(model)["W"] is Action.KEEP


@pytest.mark.parametrize("make", [modelzoo.cnn, modelzoo.mlp, modelzoo.with_if, modelzoo.qdq])
def test_compressed_model_invariants(make):
    model = make()
    compressed, report = compress_model(model, CompressConfig(min_elements=256))
    assert report.tensors, "something must be compressed"
    onnx.checker.check_model(compressed, full_check=True)
    # inputs, outputs, metadata unchanged
    assert compressed.graph.input == model.graph.input
    assert compressed.graph.output == model.graph.output
    assert compressed.metadata_props == model.metadata_props
    assert compressed.doc_string == model.doc_string and compressed.ir_version == model.ir_version
    assert any(op.domain == DOMAIN and op.version == 1 for op in compressed.opset_import)
    # each decode output keeps the old name, type and shape
    vi = {v.name: v for v in compressed.graph.value_info}
    inits = {i.name: i for i in model.graph.initializer}
    for node, blob in decode_nodes(compressed):
        name = node.output[0]
        assert blob.name == name + BLOB_SUFFIX and blob.data_type == TensorProto.UINT8
        t = vi[name].type.tensor_type
        assert t.elem_type == inits[name].data_type
        assert [d.dim_value for d in t.shape.dim] == list(inits[name].dims)
    # the original is untouched (not inplace)
    assert model == make()


def test_shared_initializer_decoded_once():
    compressed, _ = compress_model(modelzoo.mlp(), CompressConfig(min_elements=256))
    assert [n.output[0] for n, _ in decode_nodes(compressed)] == ["W"]
    assert sum(1 for n in compressed.graph.node if "W" in n.input) == 2


def test_graphsurgeon_sees_the_same_consumers():
    """Cross-check the swap with an independent graph library."""
    model = modelzoo.cnn(channels=32)
    compressed, _ = compress_model(model)
    g0, g1 = gs.import_onnx(model), gs.import_onnx(compressed)
    t0, t1 = g0.tensors(), g1.tensors()
    for node, _ in decode_nodes(compressed):
        name = node.output[0]
        assert isinstance(t1[name], gs.Variable)
        assert t1[name].inputs[0].op == "Decode" and t1[name].inputs[0].domain == DOMAIN
        assert sorted(n.name for n in t1[name].outputs) == sorted(n.name for n in t0[name].outputs)
    g1.cleanup()
    assert len([n for n in g1.nodes if n.domain == DOMAIN]) == len(decode_nodes(compressed))


@pytest.mark.parametrize("make", [modelzoo.cnn, modelzoo.with_if, modelzoo.qdq])
def test_decompress_restores_a_plain_model(make):
    model = make()
    compressed, _ = compress_model(model, CompressConfig(min_elements=256))
    dense = decompress_model(compressed)
    onnx.checker.check_model(dense, full_check=True)
    assert all(n.domain != DOMAIN for n in dense.graph.node)
    assert all(op.domain != DOMAIN for op in dense.opset_import)
    assert [i.name for i in dense.graph.initializer] == [i.name for i in model.graph.initializer]
    assert [n.op_type for n in dense.graph.node] == [n.op_type for n in model.graph.node]
    blobs = {n.output[0]: decode_blob(blob_bytes(b)) for n, b in decode_nodes(compressed)}
    for init in dense.graph.initializer:
        if init.name in blobs:
            assert numpy_helper.to_array(init).tobytes() == blobs[init.name].tobytes()


def test_compress_is_deterministic_and_seeded():
    a, _ = compress_model(modelzoo.mlp(), CompressConfig(seed=1))
    b, _ = compress_model(modelzoo.mlp(), CompressConfig(seed=1))
    c, _ = compress_model(modelzoo.mlp(), CompressConfig(seed=2))
    assert a.SerializeToString() == b.SerializeToString()
    assert a.SerializeToString() != c.SerializeToString()


def test_recompressing_leaves_blobs_alone():
    once, _ = compress_model(modelzoo.mlp())
    twice, report = compress_model(once)
    assert report.tensors == [] and len(decode_nodes(twice)) == 1


def test_external_data_models_load_and_save(tmp_path):
    model = modelzoo.cnn(channels=32)
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="ext.bin", size_threshold=0)
    loaded = load_model(path)
    compressed, report = compress_model(loaded)
    assert report.tensors
    save_model(compressed, tmp_path / "out.onnx")
    again = load_model(tmp_path / "out.onnx")
    assert len(decode_nodes(again)) == len(report.tensors)
    dense = decompress_model(again)
    onnx.checker.check_model(dense)


def test_float16_model():
    model = modelzoo.mlp(dtype=np.float16)
    compressed, report = compress_model(model)
    assert report.tensors[0].dtype == "FLOAT16"
    assert decode_nodes(compressed)[0][0].op_type == "DecodeFloat16"
    onnx.checker.check_model(compressed, full_check=True)


def test_large_models_are_saved_with_external_data(tmp_path, monkeypatch):
    import onnx_udc.graph.modelio as modelio

    monkeypatch.setattr(modelio, "PROTO_LIMIT", 1000)  # pretend the model is over 2 GB
    model = modelzoo.cnn(channels=32)
    save_model(model, tmp_path / "big.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.onnx", "big.onnx.data"]
    again = load_model(tmp_path / "big.onnx")
    assert [numpy_helper.to_array(i).tobytes() for i in again.graph.initializer] == [
        numpy_helper.to_array(i).tobytes() for i in model.graph.initializer
    ]
    assert model.graph.initializer[0].HasField("raw_data")  # the caller's model is not emptied


def test_constant_nodes_and_layout_ops_are_weights_too():
    model = modelzoo.constants()
    got = {c.name: (c.action, c.kind) for c in select(model)}
    assert got == {"W3": (Action.QUANTIZE, "initializer"), "W1": (Action.QUANTIZE, "constant"),
                   "W2": (Action.QUANTIZE, "constant")}
    compressed, report = compress_model(model)
    assert sorted(t.name for t in report.tensors) == ["W1", "W2", "W3"]
    onnx.checker.check_model(compressed, full_check=True)
    assert not any(n.op_type == "Constant" for n in compressed.graph.node)
    # the branch's Constant is hoisted: decoded in the main graph, read from the outer scope
    then_branch = next(a.g for a in compressed.graph.node[-1].attribute if a.name == "then_branch")
    assert [n.op_type for n in then_branch.node] == ["MatMul"] and not then_branch.initializer
    assert {n.output[0] for n, _ in decode_nodes(compressed)} == {"W1", "W2", "W3"}
    dense = decompress_model(compressed)
    onnx.checker.check_model(dense, full_check=True)
    assert {i.name for i in dense.graph.initializer} == {"W1", "W2", "W3"}
    assert not any(n.domain == DOMAIN for n in dense.graph.node)


def test_weight_read_as_a_shape_is_never_touched():
    model = modelzoo.mlp()
    # W also feeds a Shape-like use through a Transpose: Transpose -> Reshape's shape slot
    model.graph.node.append(onnx.helper.make_node("Transpose", ["W"], ["Wt"]))
    model.graph.node.append(onnx.helper.make_node("Reshape", ["x", "Wt"], ["z"]))
    got = {c.name: c for c in select(model)}
    assert got["W"].action is Action.KEEP and "Reshape" in got["W"].reason


def test_negligible_weights_are_stored_exactly():
    """A weight decayed to subnormal values cannot get a normal float32 step: it is kept
    exact (raw) instead of failing the whole compression."""
    model = modelzoo.cnn(channels=32)
    init = next(i for i in model.graph.initializer if i.name == "conv2.w")
    tiny = np.full(numpy_helper.to_array(init).shape, 1.5e-43, np.float32)
    init.CopyFrom(numpy_helper.from_array(tiny, "conv2.w"))
    compressed, report = compress_model(model)
    assert {t.name: t.action for t in report.tensors}["conv2.w"] is Action.LOSSLESS
    found = {node.output[0]: init for node, init in decode_nodes(compressed)}
    assert decode_blob(blob_bytes(found["conv2.w"])).tobytes() == tiny.tobytes()
