"""Which weights to compress, and why the others stay: a pure function of the model.

    select(model) -> [Candidate]    one per initializer and Constant node (any graph):
                                    QUANTIZE (float weight), LOSSLESS (integer weight of a
                                    quantized model), KEEP (with the reason)
    kept_for_type([Candidate])      the weights kept dense only for their element type
                                    (float64, bfloat16, ...), per type: what to tell the user

A weight is what the op registry (graph.roles) says a node reads as a weight, looking
through layout ops; shape-like inputs are never touched.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import onnx
from onnx import TensorProto

from .layers import LayerUse, analyze, constant_value, iter_graphs, readers
from .roles import Role, role_of


class Action(enum.Enum):
    QUANTIZE = "quantize"  # lossy: the configured quantizer
    LOSSLESS = "lossless"  # raw quantizer + coder: bit-exact
    KEEP = "keep"  # left as it is


@dataclass(frozen=True)
class Candidate:
    name: str
    elem_type: int  # TensorProto.DataType
    shape: tuple[int, ...]
    action: Action
    reason: str
    kind: str = "initializer"  # or "constant" (a Constant node, in any graph)
    role: str = ""  # layer role of its consumers ("conv", "matmul_b", ...; "" when mixed or other)
    use: LayerUse | None = field(default=None, compare=False, repr=False)  # graph.layers.analyze

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Source:
    """Where a weight lives: an initializer of the main graph, or a Constant node anywhere."""

    name: str
    tensor: TensorProto
    graph: onnx.GraphProto | None = None  # the Constant node's graph; None for an initializer
    node: onnx.NodeProto | None = None
    in_subgraph: bool = False


def weight_sources(model: onnx.ModelProto) -> list[Source]:
    sources = [Source(init.name, init) for init in model.graph.initializer]
    for depth, graph in enumerate(iter_graphs(model.graph)):
        for node in graph.node:
            value = constant_value(node)
            if value is not None:
                sources.append(Source(node.output[0], value, graph, node, in_subgraph=depth > 0))
    return sources


def effective_roles(name: str, uses: dict, graph_outputs: set[str], seen: set[str] | None = None) -> dict[Role, set[str]]:
    """Role -> op types, for every use of ``name``, looking through layout ops."""
    seen = set() if seen is None else seen
    if name in seen:
        return {}
    seen.add(name)
    roles: dict[Role, set[str]] = {}
    if name in graph_outputs:
        roles.setdefault(Role.OTHER, set()).add("graph output")
    for node, index in uses.get(name, []):
        role = role_of(node.domain, node.op_type, index)
        if role is Role.THROUGH:
            for out in node.output:
                for r, ops in effective_roles(out, uses, graph_outputs, seen).items():
                    roles.setdefault(r, set()).update(ops)
        else:
            roles.setdefault(role, set()).add(node.op_type)
    return roles


_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16}
_INT_TYPES = {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT32}


def _classify(source: Source, roles: dict[Role, set[str]], graph_io: set[str], min_elements: int) -> tuple[Action, str]:
    tensor = source.tensor
    if source.node is None and source.name in graph_io:
        return Action.KEEP, "is a graph input or output"
    if not roles:
        return Action.KEEP, "unused"
    if math.prod(tensor.dims) < min_elements:
        return Action.KEEP, f"fewer than {min_elements} elements"
    if tensor.data_location == TensorProto.EXTERNAL:
        return Action.KEEP, "external data not loaded"
    kinds = set(roles)
    if tensor.data_type in _FLOAT_TYPES and kinds == {Role.WEIGHT}:
        return Action.QUANTIZE, "float weight"
    if tensor.data_type in _INT_TYPES and kinds == {Role.INT_WEIGHT}:
        return Action.LOSSLESS, "already-quantized integer weight"
    if Role.OTHER in kinds:
        return Action.KEEP, f"not a weight input of {', '.join(sorted(roles[Role.OTHER]))}"
    return Action.KEEP, f"{TYPE_REASON}{TensorProto.DataType.Name(tensor.data_type)} not compressed"


TYPE_REASON = "element type "  # how the reason of a weight kept for its element type begins


def select_sources(model: onnx.ModelProto, min_elements: int = 1024,
                   layers: Mapping[str, LayerUse] | None = None) -> list[tuple[Source, Candidate]]:
    """Every weight with where it lives and what to do with it (``layers``: analyze(model),
    computed here when not given)."""
    uses = readers(model)
    layers = analyze(model) if layers is None else layers
    graph_io = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    outputs = {v.name for g in iter_graphs(model.graph) for v in g.output}
    pairs = []
    for source in weight_sources(model):
        action, reason = _classify(source, effective_roles(source.name, uses, outputs), graph_io, min_elements)
        pairs.append((source, Candidate(source.name, source.tensor.data_type, tuple(int(d) for d in source.tensor.dims),
                                        action, reason, "constant" if source.node is not None else "initializer",
                                        layers[source.name].role, layers[source.name])))
    return pairs


def select(model: onnx.ModelProto, min_elements: int = 1024) -> list[Candidate]:
    """Decide, for every initializer and Constant node, what to do with it. Pure."""
    return [cand for _, cand in select_sources(model, min_elements)]


@dataclass(frozen=True)
class KeptType:
    """The weights of one element type kept dense because onnx-udc does not code that type."""

    dtype: str  # numpy's name: "float64", "bfloat16", ...
    count: int
    nbytes: int


def kept_for_type(candidates: list[Candidate]) -> list[KeptType]:
    """Per element type, the weights ``select`` kept dense only for their type (a float64 or
    bfloat16 weight, an int16 weight of a quantized op), largest first."""
    from onnx.helper import tensor_dtype_to_np_dtype

    from .validate import dense_bytes

    found: dict[int, list[int]] = {}
    for cand in candidates:
        if cand.action is Action.KEEP and cand.reason.startswith(TYPE_REASON):
            entry = found.setdefault(cand.elem_type, [0, 0])
            entry[0] += 1
            entry[1] += dense_bytes(cand.elem_type, cand.shape) or 0
    kinds = [KeptType(tensor_dtype_to_np_dtype(t).name if t != TensorProto.STRING else "string", n, b)
             for t, (n, b) in found.items()]
    return sorted(kinds, key=lambda k: (-k.nbytes, k.dtype))
