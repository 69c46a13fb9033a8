"""How each weight is consumed: one analysis that every stage reads.

    analyze(model) -> {weight name: LayerUse}
        role         how the direct readers use it: "conv", "conv_transpose", "matmul_b",
                     "matmul_a", "gemm_b", "gemm_b_transposed", "embedding"; "" when the
                     readers disagree or read it otherwise (biases, norms, ...)
        readers      [(node, input slot)] over the graph and every subgraph
        consumer     the single main-graph Conv / MatMul (as B) / Gemm (as B) reading it,
                     with the activation it multiplies and the attributes im2col needs
                     (None otherwise: then no calibration statistics can be collected)
        axis_order   the order whose row-major run keeps one output's weights together
                     (lattice vectors, PQ blocks, codeword-table rows: FORMAT.md 4.3 / 4.7)
        layer_type   "conv3x3" / "conv1x1" / "conv" / "matmul" / "other" (PQ block sizes)

Pure: reads the proto, changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import onnx
from onnx import helper


@dataclass(frozen=True)
class Consumer:
    """The one layer that multiplies a weight: op role, the activation tensor it reads, and
    what im2col needs (Conv: (strides, pads, dilations, group); Gemm: (transA,))."""

    weight: str
    role: str
    activation: str
    shape: tuple[int, ...]  # the weight's shape
    attrs: tuple = ()


@dataclass(frozen=True)
class LayerUse:
    name: str
    shape: tuple[int, ...]
    role: str
    readers: tuple[tuple[onnx.NodeProto, int], ...] = field(default=(), compare=False, repr=False)
    consumer: Consumer | None = None

    @property
    def axis_order(self) -> tuple[int, ...]:
        return axis_order(self.role, self.shape)

    @property
    def layer_type(self) -> str:
        return layer_type(self.role, self.shape)


# ---- role -> axis order (vectors and blocks run inside one output channel / column / row) ----
def _identity(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(len(shape)))


def _swap(i: int, j: int):
    def order(shape: tuple[int, ...]) -> tuple[int, ...]:
        out = list(range(len(shape)))
        if len(out) >= 2:
            out[i], out[j] = out[j], out[i]
        return tuple(out)

    return order


_AXIS_ORDER = {
    "conv": _identity,  # Conv W [O, I/g, kh, kw]: along kw, kh, I inside output channel O (im2col order)
    "conv_transpose": _swap(0, 1),  # ConvTranspose W [I, O/g, kh, kw]: inside output channel O
    "matmul_b": _swap(-2, -1),  # MatMul B [..., K, N]: along K, inside output column N
    "gemm_b": _swap(-2, -1),  # Gemm B, transB = 0 [K, N]: along K
    "gemm_b_transposed": _identity,  # Gemm B, transB = 1 [N, K]: along the row (K)
    "matmul_a": _identity,  # a weight as first input [..., M, K]: along K
    "embedding": _identity,  # Gather data [V, D]: along one embedding row
}


def axis_order(role: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axis order for this role (identity for any other: biases, norms)."""
    return _AXIS_ORDER.get(role, _identity)(tuple(shape))


def layer_type(role: str, shape: tuple[int, ...]) -> str:
    """"conv3x3" / "conv1x1" / "conv" / "matmul" / "other": the key of PQConfig.block."""
    if role == "conv" and len(shape) == 4:
        if tuple(shape[2:]) == (1, 1):
            return "conv1x1"
        return "conv3x3" if tuple(shape[2:]) == (3, 3) else "conv"
    if role in ("matmul_b", "gemm_b", "gemm_b_transposed"):
        return "matmul"
    return "other"


def run_length(shape: tuple[int, ...], order: tuple[int, ...]) -> int:
    """Weights of one output in the transposed stream: product of all but the first axis."""
    tshape = [shape[a] for a in order]
    return math.prod(tshape[1:]) if len(tshape) >= 2 else max(1, math.prod(tshape))


# ---- the analysis ------------------------------------------------------------------------
def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attr in node.attribute:
        if attr.type == onnx.AttributeProto.GRAPH:
            yield attr.g
        elif attr.type == onnx.AttributeProto.GRAPHS:
            yield from attr.graphs


def iter_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """A graph and, recursively, every subgraph of its nodes."""
    yield graph
    for node in graph.node:
        for sub in _subgraphs(node):
            yield from iter_graphs(sub)


def iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of a graph and, recursively, of its subgraphs."""
    for g in iter_graphs(graph):
        yield from g.node


def constant_value(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor of a Constant node's ``value`` attribute (None for other nodes or forms)."""
    if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.output) != 1:
        return None
    return next((a.t for a in node.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR), None)


def readers(model: onnx.ModelProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    """name -> [(node, input index)] over the graph and all subgraphs."""
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in iter_nodes(model.graph):
        for index, name in enumerate(node.input):
            if name:
                uses.setdefault(name, []).append((node, index))
    return uses


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _reader_role(node: onnx.NodeProto, index: int) -> str:
    op = node.op_type
    if op == "Conv" and index == 1:
        return "conv"
    if op == "ConvTranspose" and index == 1:
        return "conv_transpose"
    if op == "MatMul":
        return "matmul_b" if index == 1 else "matmul_a"
    if op == "Gemm" and index in (0, 1):
        if index == 0:
            return "matmul_a"
        return "gemm_b_transposed" if _attr(node, "transB", 0) else "gemm_b"
    if op == "Gather" and index == 0:
        return "embedding"
    return ""


def _consumer(name: str, shape: tuple[int, ...], main_readers: list[tuple[onnx.NodeProto, int]]) -> Consumer | None:
    if len(main_readers) != 1:
        return None
    node, slot = main_readers[0]
    if node.op_type == "Conv" and slot == 1 and len(shape) == 4:
        if _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return None  # SAME_* padding: im2col not handled
        attrs = (
            tuple(_attr(node, "strides", [1, 1])),
            tuple(_attr(node, "pads", [0, 0, 0, 0])),
            tuple(_attr(node, "dilations", [1, 1])),
            int(_attr(node, "group", 1)),
        )
        return Consumer(name, "conv", node.input[0], shape, attrs)
    if node.op_type == "MatMul" and slot == 1 and len(shape) == 2:
        return Consumer(name, "matmul_b", node.input[0], shape)
    if node.op_type == "Gemm" and slot == 1 and len(shape) == 2:
        role = "gemm_b_transposed" if _attr(node, "transB", 0) else "gemm_b"
        return Consumer(name, role, node.input[0], shape, (int(_attr(node, "transA", 0)),))
    return None


def analyze(model: onnx.ModelProto) -> dict[str, LayerUse]:
    """Every initializer and Constant node (in any graph) -> how it is consumed."""
    uses = readers(model)
    main_ids = {id(n) for n in model.graph.node}
    init_names = {i.name for i in model.graph.initializer}
    shapes: dict[str, tuple[int, ...]] = {i.name: tuple(int(d) for d in i.dims) for i in model.graph.initializer}
    for node in iter_nodes(model.graph):
        value = constant_value(node)
        if value is not None:
            shapes.setdefault(node.output[0], tuple(int(d) for d in value.dims))
    out: dict[str, LayerUse] = {}
    for name, shape in shapes.items():
        rd = uses.get(name, [])
        roles = {_reader_role(n, i) for n, i in rd}
        role = roles.pop() if len(roles) == 1 else ""
        main = [(n, i) for n, i in rd if id(n) in main_ids]
        consumer = _consumer(name, shape, main) if name in init_names else None
        out[name] = LayerUse(name, shape, role, tuple(rd), consumer)
    return out
