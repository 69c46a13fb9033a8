"""The graph rewrite: swap chosen weights for decode nodes, and back.

    replace_weights(model, [(source, blob, dtype)])
        each weight W becomes  W__udc_blob (uint8 initializer) -> ai.onnx_udc.Decode* -> W
    decompress_model(model)  each decode node becomes a dense initializer again

The rewrite edits the ModelProto directly: node order, names, subgraphs, functions,
metadata, graph inputs and outputs are kept exactly; only the chosen weights change.
(onnx-graphsurgeon 0.6.1 drops initializers read only inside subgraphs from
``Graph.tensors()`` and rebuilds the whole proto on export, so the swap is done on the
proto; tests cross-check the result with onnx-graphsurgeon.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..codec import decode_blob
from ..errors import ModelError, UdcError
from ..format import BLOB_SUFFIX, DECODE_OP_TYPES, DOMAIN, DOMAIN_VERSION, DType
from .layers import iter_graphs, iter_nodes
from .modelio import Spill, is_deferred, tensor_array
from .select import Source


def _unique_name(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _all_names(model: onnx.ModelProto) -> set[str]:
    names = {i.name for i in model.graph.initializer}
    names |= {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    for node in iter_nodes(model.graph):
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


def replace_weights(model: onnx.ModelProto, swaps: Iterable[tuple[Source, bytes | TensorProto, DType]]) -> None:
    """Swap each (source, blob, dtype) of ``model`` (in place) for a decode node. A blob is
    its bytes, or a uint8 tensor holding them (a deferred one of modelio.Spill).

    An initializer W of the main graph becomes a blob initializer plus a decode node at
    the head of the graph; a main-graph Constant node becomes a decode node in place; a
    Constant node inside a subgraph moves to the head of the main graph as a decode node
    (the subgraph reads it from the outer scope: onnxruntime cannot type-infer custom ops
    inside If/Loop bodies). Every blob is a main-graph initializer. The sources must come
    from ``select_sources(model)``.
    """
    taken = _all_names(model)
    head_nodes: list[onnx.NodeProto] = []  # decode nodes of main-graph initializers
    any_swap = False
    for src, blob_data, dtype in swaps:
        any_swap = True
        name = src.name
        shape = [int(d) for d in src.tensor.dims]
        blob_name = _unique_name(name + BLOB_SUFFIX, taken)
        if isinstance(blob_data, TensorProto):  # a blob already written elsewhere (modelio.Spill): its stand-in
            blob = TensorProto()
            blob.CopyFrom(blob_data)
            blob.name = blob_name
        else:
            blob = numpy_helper.from_array(np.frombuffer(blob_data, dtype=np.uint8), blob_name)
        decode = helper.make_node(dtype.op_type, [blob.name], [name], domain=DOMAIN,
                                  name=(src.node.name if src.node is not None and src.node.name else
                                        _unique_name(f"udc_decode/{name}", taken)))
        if src.node is None:
            src.tensor.CopyFrom(blob)  # the initializer becomes the blob, in place
            head_nodes.append(decode)
        elif not src.in_subgraph:
            src.node.CopyFrom(decode)  # a main-graph Constant becomes the decode node, in place
            model.graph.initializer.append(blob)
        else:
            kept = [n for n in src.graph.node if not (n.op_type == "Constant" and list(n.output) == [name])]
            del src.graph.node[:]
            src.graph.node.extend(kept)
            model.graph.initializer.append(blob)
            head_nodes.append(decode)
        _set_value_info(model.graph, helper.make_tensor_value_info(name, int(dtype), shape))
    if head_nodes:
        nodes = head_nodes + list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    if any_swap and not any(op.domain == DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, DOMAIN_VERSION))


def _set_value_info(graph: onnx.GraphProto, info: onnx.ValueInfoProto) -> None:
    kept = [v for v in graph.value_info if v.name != info.name]
    del graph.value_info[:]
    graph.value_info.extend(kept + [info])


def decode_nodes(model: onnx.ModelProto | onnx.GraphProto) -> list[tuple[onnx.NodeProto, onnx.TensorProto]]:
    """A graph's own decode nodes (the main graph's for a model), each with its blob initializer."""
    graph = model.graph if isinstance(model, onnx.ModelProto) else model
    inits = {init.name: init for init in graph.initializer}
    found = []
    for node in graph.node:
        if node.domain == DOMAIN and node.op_type in DECODE_OP_TYPES:
            label = node.name or (node.output[0] if node.output else "?")
            if len(node.output) != 1 or not node.output[0]:
                raise ModelError(f"decode node {label!r} ({node.op_type}) must have one named output, "
                                 f"it has {list(node.output)}")
            if len(node.input) != 1 or node.input[0] not in inits:
                raise ModelError(f"decode node {label} has no blob initializer in its graph")
            if node.output[0] in inits or any(node.output[0] == other.output[0] for other, _ in found):
                raise ModelError(f"decode node {label!r} outputs {node.output[0]!r}, which an initializer or another "
                                 "decode node already defines")
            found.append((node, inits[node.input[0]]))
    return found


def has_decode_nodes(model: onnx.ModelProto) -> bool:
    return any(n.domain == DOMAIN for n in iter_nodes(model.graph))


def remove_decode_nodes(graph: onnx.ModelProto | onnx.GraphProto, outputs: set[str]) -> None:
    """Delete a graph's decode nodes that produce ``outputs``."""
    graph = graph.graph if isinstance(graph, onnx.ModelProto) else graph
    keep = [n for n in graph.node if not (n.domain == DOMAIN and n.output and n.output[0] in outputs)]
    del graph.node[:]
    graph.node.extend(keep)


def blob_bytes(init: onnx.TensorProto) -> bytes | memoryview:
    """A blob initializer's bytes (a deferred one mapped read-only, read when touched)."""
    if init.data_type != TensorProto.UINT8:
        raise ModelError(f"blob {init.name} is not uint8")
    if is_deferred(init):
        return memoryview(tensor_array(init)).cast("B")
    return init.raw_data if init.HasField("raw_data") else bytes(numpy_helper.to_array(init).tobytes())


def decode_node(node: onnx.NodeProto, blob: onnx.TensorProto, decoder: Callable[[bytes], np.ndarray]) -> np.ndarray:
    """Decode one decode node's blob; errors name the tensor, and the type must match the op."""
    name = node.output[0]
    try:
        array = decoder(blob_bytes(blob))
    except UdcError as exc:
        raise type(exc)(f"{name}: {exc}") from None
    expected = DType.from_op_type(node.op_type)
    if DType.from_numpy(array.dtype) is not expected:
        raise ModelError(f"{name}: blob holds {array.dtype}, op {node.op_type} outputs {expected.name}")
    return array


def dense_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the tensors the main graph's decode nodes decode to (from the blob headers;
    a blob whose header does not parse counts 0: decoding it reports the error)."""
    from ..format.blob import parse_blob

    total = 0
    for _, init in decode_nodes(model):
        try:
            total += parse_blob(blob_bytes(init))[0].nbytes
        except (UdcError, ModelError):
            pass
    return total


def _readers(graph: onnx.GraphProto) -> Counter[str]:
    """How many node inputs and graph outputs name each value, over every graph (scopes are
    not told apart: a count too high only keeps a blob initializer that could go)."""
    count: Counter[str] = Counter()
    for g in iter_graphs(graph):
        for node in g.node:
            count.update(node.input)
        count.update(o.name for o in g.output)
    return count


def decompress_model(
    model: onnx.ModelProto,
    *,
    inplace: bool = False,
    decoder: Callable[[bytes], np.ndarray] = decode_blob,
    spill: Spill | None = None,
) -> onnx.ModelProto:
    """Turn every decode node back into dense data: a plain ONNX model.

    In the main graph the blob initializer becomes the dense initializer; in a subgraph
    the decode node becomes a Constant node (where compress found it). A blob initializer
    that something else reads too (another node, a graph output, a second decode node)
    stays, and the dense tensor is added beside it.

    ``spill`` (modelio.spill_file): the main graph's dense initializers are decoded after
    the rewrite, in initializer order, each written there as soon as it is decoded (with
    the other tensors that go to external data, so that an output with external data takes
    the spill as its data file), and the model holds deferred tensors reading them back:
    one dense tensor in memory at a time; ``save_model`` writes the same bytes. Blobs of a
    model loaded with deferred external data are read through memory maps.
    """
    if not inplace:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    readers = _readers(model.graph)
    pending: dict[str, tuple[onnx.NodeProto, TensorProto]] = {}  # dense name -> its decode node and blob
    for depth, graph in enumerate(list(iter_graphs(model.graph))):
        main = depth == 0
        dense_names = set()
        blob_names = set()
        position = {init.name: i for i, init in enumerate(graph.initializer)}
        for node, init in decode_nodes(graph):
            name = node.output[0]
            if main and spill is not None:  # decoded below, once the graph is rewritten
                pending[name] = (_copied(node), _copied(init))
                dense = TensorProto(name=name)
            else:
                dense = numpy_helper.from_array(decode_node(node, init, decoder), name)
            shared = readers[init.name] > 1  # read by more than its decode node: the blob stays
            if main:
                if shared:
                    graph.initializer.append(dense)
                else:
                    graph.initializer[position[init.name]].CopyFrom(dense)
                dense_names.add(name)
            else:
                node.CopyFrom(helper.make_node("Constant", [], [name], name=node.name, value=dense))
                if not shared:
                    blob_names.add(init.name)
        remove_decode_nodes(graph, dense_names)
        if dense_names:
            vi = [v for v in graph.value_info if v.name not in dense_names]
            del graph.value_info[:]
            graph.value_info.extend(vi)
        if blob_names:
            inits = [i for i in graph.initializer if i.name not in blob_names]
            del graph.initializer[:]
            graph.initializer.extend(inits)
    if spill is not None:
        for i, tensor in enumerate(model.graph.initializer):
            if tensor.name in pending:
                node, blob = pending.pop(tensor.name)
                array = decode_node(node, blob, decoder)
                dense = spill.put(tensor.name, array, helper.np_dtype_to_tensor_dtype(array.dtype), array.shape)
                del array
            else:
                dense = spill.put_tensor(tensor)
            if dense is not None:
                model.graph.initializer[i].CopyFrom(dense)
    if not has_decode_nodes(model):
        ops = [op for op in model.opset_import if op.domain != DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(ops)
    return model


def _copied(message):
    copy = type(message)()
    copy.CopyFrom(message)
    return copy
