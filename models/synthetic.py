"""Deployment-shaped models made here, with random weights (no download): what the C++
example and the loader benchmarks must handle besides one float image input.

    tiny_bert()     token ids + attention mask (int64 [B, S]) -> hidden states and a
                    pooled vector: a BERT-style encoder (Gather embeddings, LayerNorm,
                    4-head self-attention with the mask as an additive bias, Erf GELU FFN)
    stateful_rnn()  a VAD-style streaming cell: audio chunk float [B, F], recurrent state
                    float [2, B, H] and a scalar sample rate int64 [] -> speech
                    probability [B, 1] and the next state [2, B, H]

Each ``*_inputs(rng)`` returns valid inputs for it ({name: array}).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

OPSET = 17
IR_VERSION = 8


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="onnx-udc-models")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


class _Builder:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def weight(self, name: str, shape, scale: float | None = None) -> str:
        fan_in = shape[0] if len(shape) > 1 else 1
        scale = scale if scale is not None else 1.0 / np.sqrt(fan_in)
        self.inits.append(nh.from_array((self.rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def const(self, name: str, value) -> str:
        self.inits.append(nh.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        self.nodes.append(h.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def layer_norm(self, x: str, dim: int, prefix: str) -> str:
        gamma = self.const(f"{prefix}.gamma", np.ones(dim, np.float32))
        beta = self.const(f"{prefix}.beta", np.zeros(dim, np.float32))
        return self.op("LayerNormalization", [x, gamma, beta], axis=-1, epsilon=1e-5)

    def linear(self, x: str, d_in: int, d_out: int, prefix: str) -> str:
        w = self.weight(f"{prefix}.weight", (d_in, d_out))
        b = self.const(f"{prefix}.bias", (self.rng.standard_normal(d_out) * 0.02).astype(np.float32))
        return self.op("Add", [self.op("MatMul", [x, w]), b])


def tiny_bert(vocab: int = 2000, hidden: int = 128, layers: int = 2, heads: int = 4, max_len: int = 64,
              seed: int = 0) -> onnx.ModelProto:
    """BERT-style encoder, inputs input_ids and attention_mask (int64 [B, S], S <= max_len)."""
    b = _Builder(seed)
    head = hidden // heads
    tok = b.op("Gather", [b.weight("embeddings.word", (vocab, hidden), 0.5), "input_ids"], axis=0)
    seq = b.op("Gather", [b.op("Shape", ["input_ids"]), b.const("one", np.array(1, np.int64))], axis=0)
    positions = b.op("Range", [b.const("zero", np.array(0, np.int64)), seq, b.const("step", np.array(1, np.int64))])
    pos = b.op("Gather", [b.weight("embeddings.position", (max_len, hidden), 0.5), positions], axis=0)
    x = b.layer_norm(b.op("Add", [tok, pos]), hidden, "embeddings.norm")
    # mask [B, S] -> additive bias [B, 1, 1, S]: 0 where attended, -10000 where padded
    mask = b.op("Cast", ["attention_mask"], to=T.FLOAT)
    bias = b.op("Mul", [b.op("Sub", [b.const("f_one", np.array(1.0, np.float32)), mask]),
                        b.const("neg", np.array(-10000.0, np.float32))])
    bias = b.op("Unsqueeze", [bias, b.const("axes_12", np.array([1, 2], np.int64))])
    split_shape = b.const("split_shape", np.array([0, 0, heads, head], np.int64))
    merge_shape = b.const("merge_shape", np.array([0, 0, hidden], np.int64))
    scale = b.const("scale", np.array(1.0 / np.sqrt(head), np.float32))
    for i in range(layers):
        p = f"layer{i}"

        def heads_of(t: str) -> str:
            return b.op("Transpose", [b.op("Reshape", [t, split_shape])], perm=[0, 2, 1, 3])  # [B, h, S, d]

        q = heads_of(b.linear(x, hidden, hidden, f"{p}.query"))
        k = heads_of(b.linear(x, hidden, hidden, f"{p}.key"))
        v = heads_of(b.linear(x, hidden, hidden, f"{p}.value"))
        scores = b.op("Add", [b.op("Mul", [b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])]), scale]), bias])
        context = b.op("MatMul", [b.op("Softmax", [scores], axis=-1), v])
        context = b.op("Reshape", [b.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_shape])
        x = b.layer_norm(b.op("Add", [x, b.linear(context, hidden, hidden, f"{p}.output")]), hidden, f"{p}.norm1")
        up = b.linear(x, hidden, 4 * hidden, f"{p}.ffn_up")
        gelu = b.op("Mul", [b.op("Mul", [up, b.op("Add", [b.op("Erf", [b.op("Div", [up, b.const(f"{p}.sqrt2", np.array(np.sqrt(2), np.float32))])]),
                                                             b.const(f"{p}.g_one", np.array(1.0, np.float32))])]),
                            b.const(f"{p}.half", np.array(0.5, np.float32))])
        x = b.layer_norm(b.op("Add", [x, b.linear(gelu, 4 * hidden, hidden, f"{p}.ffn_down")]), hidden, f"{p}.norm2")
    b.nodes.append(h.make_node("Identity", [x], ["last_hidden_state"]))
    b.nodes.append(h.make_node("ReduceMean", [x], ["pooled"], axes=[1], keepdims=0))
    graph = h.make_graph(
        b.nodes, "tiny_bert",
        [h.make_tensor_value_info("input_ids", T.INT64, ["batch", "sequence"]),
         h.make_tensor_value_info("attention_mask", T.INT64, ["batch", "sequence"])],
        [h.make_tensor_value_info("last_hidden_state", T.FLOAT, ["batch", "sequence", hidden]),
         h.make_tensor_value_info("pooled", T.FLOAT, ["batch", hidden])],
        b.inits)
    return _model(graph)


def tiny_bert_inputs(rng: np.random.Generator, batch: int = 2, seq: int = 16, vocab: int = 2000) -> dict[str, np.ndarray]:
    ids = rng.integers(1, vocab, size=(batch, seq), dtype=np.int64)
    mask = np.ones((batch, seq), np.int64)
    mask[1:, seq // 2:] = 0  # later rows padded
    return {"input_ids": ids, "attention_mask": mask}


def stateful_rnn(features: int = 256, hidden: int = 128, seed: int = 0) -> onnx.ModelProto:
    """Streaming two-layer tanh cell with its state as input and output (Silero-VAD-like)."""
    b = _Builder(seed)
    h0 = b.op("Gather", ["state", b.const("i0", np.array(0, np.int64))], axis=0)  # [B, H]
    h1 = b.op("Gather", ["state", b.const("i1", np.array(1, np.int64))], axis=0)
    a0 = b.op("Tanh", [b.op("Add", [b.linear("input", features, hidden, "cell0.input"),
                                     b.op("MatMul", [h0, b.weight("cell0.recurrent", (hidden, hidden))])])])
    a1 = b.op("Tanh", [b.op("Add", [b.linear(a0, hidden, hidden, "cell1.input"),
                                     b.op("MatMul", [h1, b.weight("cell1.recurrent", (hidden, hidden))])])])
    rate = b.op("Div", [b.op("Cast", ["sr"], to=T.FLOAT), b.const("sr_ref", np.array(16000.0, np.float32))])
    logit = b.op("Mul", [b.linear(a1, hidden, 1, "head"), rate])
    b.nodes.append(h.make_node("Sigmoid", [logit], ["output"]))
    axes = b.const("axes0", np.array([0], np.int64))
    b.nodes.append(h.make_node("Concat", [b.op("Unsqueeze", [a0, axes]), b.op("Unsqueeze", [a1, axes])], ["stateN"], axis=0))
    graph = h.make_graph(
        b.nodes, "stateful_rnn",
        [h.make_tensor_value_info("input", T.FLOAT, ["batch", features]),
         h.make_tensor_value_info("state", T.FLOAT, [2, "batch", hidden]),
         h.make_tensor_value_info("sr", T.INT64, [])],
        [h.make_tensor_value_info("output", T.FLOAT, ["batch", 1]),
         h.make_tensor_value_info("stateN", T.FLOAT, [2, "batch", hidden])],
        b.inits)
    return _model(graph)


def stateful_rnn_inputs(rng: np.random.Generator, batch: int = 1, features: int = 256, hidden: int = 128
                        ) -> dict[str, np.ndarray]:
    return {"input": rng.standard_normal((batch, features)).astype(np.float32),
            "state": (rng.standard_normal((2, batch, hidden)) * 0.1).astype(np.float32),
            "sr": np.array(16000, np.int64)}
