"""Consistency checks of a loaded model that onnx itself does not make (pure functions).

    tensor_problem(tensor) -> str | None    its data length disagrees with dims x element size
    check_tensors(model)                    every initializer and tensor attribute, any graph
    check_references(model)                 every node input is defined in its scope

Both checks raise ModelError naming the tensor (or node) and where it lives. Blob
initializers are tensors like any other here: a uint8 blob whose dims disagree with its
bytes is a model error; what its bytes say is the blob decoder's business (format errors).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import onnx
from onnx import TensorProto

from ..errors import ModelError

# Element sizes in bits of the types onnx packs below a byte (numpy's itemsize says 1 for them).
_SUB_BYTE_BITS = {getattr(TensorProto, n): b for n, b in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2),
                                                           ("UINT2", 2), ("FLOAT6E2M3", 6), ("FLOAT6E3M2", 6))
                  if hasattr(TensorProto, n)}
_TWO_VALUES = {TensorProto.COMPLEX64, TensorProto.COMPLEX128}  # two typed values per element


def _type_name(data_type: int) -> str:
    try:
        return TensorProto.DataType.Name(data_type)
    except ValueError:
        return str(data_type)


def _dims_text(dims) -> str:
    return "x".join(str(d) for d in dims) or "scalar"


def dense_bytes(data_type: int, dims) -> int | None:
    """Bytes of a dense tensor of this type and dims as raw_data (None for strings and
    unknown types)."""
    numel = math.prod(dims)
    if data_type in _SUB_BYTE_BITS:
        return -(-numel * _SUB_BYTE_BITS[data_type] // 8)
    if data_type in (TensorProto.UNDEFINED, TensorProto.STRING) or data_type not in TensorProto.DataType.values():
        return None
    return numel * onnx.helper.tensor_dtype_to_np_dtype(data_type).itemsize


def tensor_problem(tensor: TensorProto) -> str | None:
    """Why ``tensor``'s data cannot be its dims x element type, or None when it can. Tensors
    whose data lives in an external file (not loaded) are not judged here."""
    dims = list(tensor.dims)
    if any(d < 0 for d in dims):
        return f"negative dims {_dims_text(dims)}"
    if tensor.data_location == TensorProto.EXTERNAL:
        return None
    dtype = tensor.data_type
    numel = math.prod(dims)
    if dtype == TensorProto.UNDEFINED or dtype not in TensorProto.DataType.values():
        return f"element type {_type_name(dtype)} is not an ONNX type"
    shape = f"dims {_dims_text(dims)} of {_type_name(dtype)}"
    if dtype == TensorProto.STRING:
        if len(tensor.string_data) != numel:
            return f"{shape} need {numel:,} strings, the tensor holds {len(tensor.string_data):,}"
        return None
    if tensor.HasField("raw_data"):
        need = dense_bytes(dtype, dims)
        have = len(tensor.raw_data)
        if have != need:
            return f"{shape} need {need:,} bytes, raw_data holds {have:,}"
        return None
    field = onnx.helper.tensor_dtype_to_field(dtype)
    have = len(getattr(tensor, field))
    if dtype in _SUB_BYTE_BITS:  # packed several to a value, or one per value: both are written
        allowed = {numel, -(-numel * _SUB_BYTE_BITS[dtype] // 8)}
    else:
        allowed = {2 * numel if dtype in _TWO_VALUES else numel}
    if have not in allowed:
        if not have:
            return f"{shape} need {numel:,} elements, the tensor holds no data"
        return f"{shape} need {min(allowed):,} {field} values, the tensor holds {have:,}"
    return None


def _node_label(node: onnx.NodeProto) -> str:
    return f"node {node.name or (node.output[0] if node.output else '?')!r} ({node.op_type})"


def _subgraphs(node: onnx.NodeProto) -> Iterator[tuple[str, onnx.GraphProto]]:
    for attr in node.attribute:
        if attr.HasField("g"):
            yield attr.name, attr.g
        for g in attr.graphs:
            yield attr.name, g


def tensors_with_place(graph: onnx.GraphProto, where: str = "") -> Iterator[tuple[TensorProto, str]]:
    """Every initializer and tensor attribute of ``graph`` and its subgraphs, with a phrase
    saying where it lives ("initializer 'W' in subgraph then_branch of node 'if' (If)")."""
    for init in graph.initializer:
        yield init, f"initializer {init.name!r}{where}"
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t, f"tensor {attr.name!r} of {_node_label(node)}{where}"
            for t in attr.tensors:
                yield t, f"tensor {attr.name!r} of {_node_label(node)}{where}"
        for name, sub in _subgraphs(node):
            yield from tensors_with_place(sub, f" in subgraph {name} of {_node_label(node)}{where}")


def check_tensors(model: onnx.ModelProto) -> None:
    """ModelError for the first tensor whose data length disagrees with its dims."""
    for tensor, place in tensors_with_place(model.graph):
        problem = tensor_problem(tensor)
        if problem is not None:
            raise ModelError(f"{place}: {problem}")


def check_references(model: onnx.ModelProto) -> None:
    """ModelError for the first node input that nothing in its graph or an enclosing one
    defines (graph inputs, initializers, node outputs; order is not checked)."""
    _check_graph(model.graph, frozenset(), "")


def _check_graph(graph: onnx.GraphProto, outer: frozenset[str], where: str) -> None:
    known = set(outer)
    known.update(v.name for v in graph.input)
    known.update(t.name for t in graph.initializer)
    known.update(s.values.name for s in graph.sparse_initializer)
    for node in graph.node:
        known.update(node.output)
    scope = frozenset(known)
    for node in graph.node:
        for name in node.input:
            if name and name not in scope:
                raise ModelError(f"{_node_label(node)}{where} reads {name!r}, which no graph input, initializer "
                                 "or node output defines")
        for attr_name, sub in _subgraphs(node):
            _check_graph(sub, scope, f" in subgraph {attr_name} of {_node_label(node)}{where}")
    for out in graph.output:
        if out.name not in scope:
            raise ModelError(f"graph output {out.name!r}{where} is not defined by any node, input or initializer")
