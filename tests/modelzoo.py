"""Small ONNX models built in code for the tests (deterministic random weights)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

IR_VERSION = 8
OPSET = 17


def _model(graph: onnx.GraphProto, extra_opsets=()) -> onnx.ModelProto:
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET), *extra_opsets], producer_name="onnx-udc-tests")
    model.ir_version = IR_VERSION
    return model


def cnn(seed: int = 0, channels: int = 16) -> onnx.ModelProto:
    """Conv-Relu-Conv-Relu-GlobalAvgPool-Flatten-Gemm; input [N,1,28,28], output logits [N,10]."""
    rng = np.random.default_rng(seed)
    c = channels
    inits = [
        nh.from_array((rng.standard_normal((c, 1, 3, 3)) * 0.3).astype(np.float32), "conv1.w"),
        nh.from_array((rng.standard_normal(c) * 0.1).astype(np.float32), "conv1.b"),
        nh.from_array((rng.standard_normal((2 * c, c, 3, 3)) * 0.1).astype(np.float32), "conv2.w"),
        nh.from_array((rng.standard_normal(2 * c) * 0.1).astype(np.float32), "conv2.b"),
        nh.from_array((rng.standard_normal((10, 2 * c)) * 0.2).astype(np.float32), "fc.w"),
        nh.from_array((rng.standard_normal(10) * 0.1).astype(np.float32), "fc.b"),
        nh.from_array(np.array([-1, 2 * c], dtype=np.int64), "flat_shape"),
    ]
    nodes = [
        h.make_node("Conv", ["input", "conv1.w", "conv1.b"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        h.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        h.make_node("Conv", ["r1", "conv2.w", "conv2.b"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2], name="conv2"),
        h.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        h.make_node("GlobalAveragePool", ["r2"], ["gap"], name="gap"),
        h.make_node("Reshape", ["gap", "flat_shape"], ["flat"], name="flatten"),
        h.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["logits"], transB=1, name="fc"),
    ]
    graph = h.make_graph(
        nodes, "cnn",
        [h.make_tensor_value_info("input", T.FLOAT, ["N", 1, 28, 28])],
        [h.make_tensor_value_info("logits", T.FLOAT, ["N", 10])],
        inits,
    )
    model = _model(graph)
    h.set_model_props(model, {"source": "tests/modelzoo.py", "purpose": "unit tests"})
    model.doc_string = "a test CNN"
    return model


def mlp(seed: int = 0, dim: int = 64, dtype=np.float32) -> onnx.ModelProto:
    """MatMul-Add-Relu-MatMul with a weight shared by both MatMuls; input [N,dim]."""
    rng = np.random.default_rng(seed)
    elem = T.FLOAT16 if dtype == np.float16 else T.FLOAT
    w = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(dtype)
    b = (rng.standard_normal((dim,)) * 0.1).astype(dtype)
    nodes = [
        h.make_node("MatMul", ["x", "W"], ["m1"]),
        h.make_node("Add", ["m1", "b"], ["a1"]),
        h.make_node("Relu", ["a1"], ["r1"]),
        h.make_node("MatMul", ["r1", "W"], ["y"]),
    ]
    graph = h.make_graph(
        nodes, "mlp",
        [h.make_tensor_value_info("x", elem, ["N", dim])],
        [h.make_tensor_value_info("y", elem, ["N", dim])],
        [nh.from_array(w, "W"), nh.from_array(b, "b")],
    )
    return _model(graph)


def qdq(seed: int = 0, dim: int = 64) -> onnx.ModelProto:
    """An int8 QDQ MatMul: DequantizeLinear(int8 weight) -> MatMul."""
    rng = np.random.default_rng(seed)
    wq = np.clip(np.rint(rng.standard_normal((dim, dim)) * 12), -127, 127).astype(np.int8)  # peaked, like real weights
    nodes = [
        h.make_node("DequantizeLinear", ["Wq", "scale", "zp"], ["W"]),
        h.make_node("MatMul", ["x", "W"], ["y"]),
    ]
    graph = h.make_graph(
        nodes, "qdq",
        [h.make_tensor_value_info("x", T.FLOAT, ["N", dim])],
        [h.make_tensor_value_info("y", T.FLOAT, ["N", dim])],
        [nh.from_array(wq, "Wq"), nh.from_array(np.array(0.01, np.float32), "scale"), nh.from_array(np.array(0, np.int8), "zp")],
    )
    return _model(graph)


def with_if(seed: int = 0, dim: int = 64) -> onnx.ModelProto:
    """An If whose then-branch reads an outer initializer W only there."""
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32)
    then_g = h.make_graph([h.make_node("MatMul", ["x", "W"], ["t"])], "then", [], [h.make_tensor_value_info("t", T.FLOAT, None)])
    else_g = h.make_graph([h.make_node("Identity", ["x"], ["e"])], "else", [], [h.make_tensor_value_info("e", T.FLOAT, None)])
    graph = h.make_graph(
        [h.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)], "ifmodel",
        [h.make_tensor_value_info("cond", T.BOOL, []), h.make_tensor_value_info("x", T.FLOAT, ["N", dim])],
        [h.make_tensor_value_info("y", T.FLOAT, ["N", dim])],
        [nh.from_array(w, "W")],
    )
    return _model(graph)


def constants(seed: int = 0, dim: int = 64) -> onnx.ModelProto:
    """Weights as Constant nodes (main graph and inside an If branch) and behind Transpose.

    This is how paddle2onnx or spox exports store weights (PP-OCR, Silero VAD).
    """
    rng = np.random.default_rng(seed)

    def weight(name):
        return nh.from_array((rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32), name)

    then_g = h.make_graph(
        [h.make_node("Constant", [], ["W2"], value=weight("W2")), h.make_node("MatMul", ["h", "W2"], ["t"])],
        "then", [], [h.make_tensor_value_info("t", T.FLOAT, None)],
    )
    else_g = h.make_graph([h.make_node("Identity", ["h"], ["e"])], "else", [], [h.make_tensor_value_info("e", T.FLOAT, None)])
    nodes = [
        h.make_node("Constant", [], ["W1"], value=weight("W1"), name="const_w1"),
        h.make_node("MatMul", ["x", "W1"], ["m"]),
        h.make_node("Transpose", ["W3"], ["W3t"], perm=[1, 0]),
        h.make_node("MatMul", ["m", "W3t"], ["h"]),
        h.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g),
    ]
    graph = h.make_graph(
        nodes, "constants",
        [h.make_tensor_value_info("cond", T.BOOL, []), h.make_tensor_value_info("x", T.FLOAT, ["N", dim])],
        [h.make_tensor_value_info("y", T.FLOAT, ["N", dim])],
        [weight("W3")],
    )
    return _model(graph)


def two_branch(seed: int = 0, dim: int = 64, quiet: float = 0.01) -> onnx.ModelProto:
    """y = Relu(x @ A) @ B + quiet * (x @ C): C matters ``quiet`` times less than A and B."""
    rng = np.random.default_rng(seed)

    def weight(name):
        return nh.from_array((rng.standard_normal((dim, dim)) / np.sqrt(dim)).astype(np.float32), name)

    nodes = [
        h.make_node("MatMul", ["x", "A"], ["a"]),
        h.make_node("Relu", ["a"], ["r"]),
        h.make_node("MatMul", ["r", "B"], ["main"]),
        h.make_node("MatMul", ["x", "C"], ["c"]),
        h.make_node("Mul", ["c", "quiet"], ["side"]),
        h.make_node("Add", ["main", "side"], ["y"]),
    ]
    graph = h.make_graph(
        nodes, "two_branch",
        [h.make_tensor_value_info("x", T.FLOAT, ["N", dim])],
        [h.make_tensor_value_info("y", T.FLOAT, ["N", dim])],
        [weight("A"), weight("B"), weight("C"), nh.from_array(np.array(quiet, np.float32), "quiet")],
    )
    return _model(graph)


# The model shapes the runtime tests run every decoder and loader on (test_runtime,
# test_capi_fast): convolutions, MatMuls in fp32 and fp16, QDQ int8, an If branch, Constant nodes.
SHAPES = {
    "cnn": lambda: cnn(channels=32),
    "mlp": mlp,
    "mlp16": lambda: mlp(dtype=np.float16),
    "qdq": qdq,
    "if": with_if,
    "constants": constants,
}
