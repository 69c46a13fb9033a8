"""The graph pass: choose initializers, swap each for a decode node, and back.

    select(model)            pure: which initializers to compress, and why the rest stay
    compress_model(model)    each chosen initializer W becomes
                                 W__udc_blob (uint8 initializer) -> ai.onnx_udc.Decode -> W
    decompress_model(model)  each decode node becomes a dense initializer again

The pass edits the ModelProto directly: node order, names, subgraphs, functions,
metadata, graph inputs and outputs are kept exactly; only the chosen initializers
change. (onnx-graphsurgeon 0.6.1 drops initializers read only inside subgraphs from
``Graph.tensors()`` and rebuilds the whole proto on export, so the swap is done on the
proto; tests cross-check the result with onnx-graphsurgeon.)
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from . import quantizers
from .codec import EncodeResult, decode_blob, encode_tensor
from .dither import derive_seed
from .errors import ModelError, UdcError
from .format import BLOB_SUFFIX, DECODE_OP_TYPES, DOMAIN, DOMAIN_VERSION, DType
from .quantizers.base import StepConfig
from .quantizers.scalar import ScalarConfig
from .roles import Role, role_of


class Action(enum.Enum):
    QUANTIZE = "quantize"  # lossy: the configured quantizer
    LOSSLESS = "lossless"  # raw quantizer + coder: bit-exact
    KEEP = "keep"  # left as it is


@dataclass(frozen=True)
class CompressConfig:
    """Everything ``compress_model`` needs to know.

    quantizer:    registered lossy quantizer for float weights ("scalar")
    coder:        registered lossless coder ("brotli", "store")
    scalar:       step of the scalar quantizer (step_rel or target_bpw)
    seed:         model seed; each tensor's dither seed derives from it and its name
    min_elements: initializers with fewer elements stay dense
    threads:      parallel encoders (default: CPU count)
    steps:        per-tensor plan (rate allocation): name -> absolute step, or None to
                  code that tensor losslessly; tensors not listed use ``scalar``
    quantizer_configs: name -> (quantizer, its config) for tensors coded by another
                  quantizer than ``quantizer`` (product quantization fits: pq_model)
    """

    quantizer: str = "scalar"
    coder: str = "brotli"
    scalar: ScalarConfig = field(default_factory=ScalarConfig)
    seed: int = 0
    min_elements: int = 1024
    threads: int | None = None
    steps: Mapping[str, float | None] | None = None
    quantizer_configs: Mapping[str, tuple[str, object]] | None = None

    def step_config(self, name: str) -> StepConfig | None:
        """The step configuration of one tensor; None means: code it losslessly."""
        if self.steps is None or name not in self.steps:
            return self.scalar
        step = self.steps[name]
        return None if step is None else replace(self.scalar, step=float(step), target_bpw=None)


@dataclass(frozen=True)
class Candidate:
    name: str
    elem_type: int  # TensorProto.DataType
    shape: tuple[int, ...]
    action: Action
    reason: str
    kind: str = "initializer"  # or "constant" (a Constant node, in any graph)
    role: str = ""  # layer role of its consumers ("conv", "matmul_b", ...; "" when mixed or other)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class TensorReport:
    name: str
    shape: tuple[int, ...]
    dtype: str
    action: Action
    original_bytes: int
    blob_bytes: int
    entropy_bits: float  # order-0 entropy of the symbols, bits per weight
    step: float
    sqnr_db: float  # inf when lossless

    @property
    def bits_per_weight(self) -> float:
        numel = math.prod(self.shape)
        return 8.0 * self.blob_bytes / numel if numel else 0.0


@dataclass
class CompressReport:
    tensors: list[TensorReport]
    kept: list[Candidate]
    original_model_bytes: int = 0
    compressed_model_bytes: int = 0

    @property
    def ratio(self) -> float:
        return self.original_model_bytes / max(1, self.compressed_model_bytes)


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


def _iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of a graph and, recursively, of its subgraphs."""
    for g in iter_graphs(graph):
        yield from g.node


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
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and len(node.output) == 1:
                value = next((a.t for a in node.attribute if a.name == "value" and a.type == onnx.AttributeProto.TENSOR), None)
                if value is not None:
                    sources.append(Source(node.output[0], value, graph, node, in_subgraph=depth > 0))
    return sources


def consumers(model: onnx.ModelProto) -> dict[str, list[tuple[onnx.NodeProto, int]]]:
    """name -> [(node, input index)] over the graph and all subgraphs."""
    uses: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in _iter_nodes(model.graph):
        for index, name in enumerate(node.input):
            if name:
                uses.setdefault(name, []).append((node, index))
    return uses


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
    return Action.KEEP, f"element type {TensorProto.DataType.Name(tensor.data_type)} not compressed"


def _layer_role(name: str, uses: dict) -> str:
    """How the direct consumers read this weight, for vector grouping; "" if mixed/other."""
    roles = set()
    for node, index in uses.get(name, []):
        op = node.op_type
        if op == "Conv" and index == 1:
            roles.add("conv")
        elif op == "ConvTranspose" and index == 1:
            roles.add("conv_transpose")
        elif op == "MatMul":
            roles.add("matmul_b" if index == 1 else "matmul_a")
        elif op == "Gemm" and index in (0, 1):
            trans = next((a.i for a in node.attribute if a.name == ("transB" if index == 1 else "transA")), 0)
            roles.add(("gemm_b_transposed" if trans else "gemm_b") if index == 1 else "matmul_a")
        elif op == "Gather" and index == 0:
            roles.add("embedding")
        else:
            roles.add("")
    return roles.pop() if len(roles) == 1 else ""


def _select_sources(model: onnx.ModelProto, min_elements: int) -> list[tuple[Source, Candidate]]:
    uses = consumers(model)
    graph_io = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    outputs = {v.name for g in iter_graphs(model.graph) for v in g.output}
    pairs = []
    for source in weight_sources(model):
        action, reason = _classify(source, effective_roles(source.name, uses, outputs), graph_io, min_elements)
        pairs.append((source, Candidate(source.name, source.tensor.data_type, tuple(int(d) for d in source.tensor.dims),
                                        action, reason, "constant" if source.node is not None else "initializer",
                                        _layer_role(source.name, uses))))
    return pairs


def select(model: onnx.ModelProto, min_elements: int = 1024) -> list[Candidate]:
    """Decide, for every initializer and Constant node, what to do with it. Pure."""
    return [cand for _, cand in _select_sources(model, min_elements)]


def _unique_name(base: str, taken: set[str]) -> str:
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _all_names(model: onnx.ModelProto) -> set[str]:
    names = {i.name for i in model.graph.initializer}
    names |= {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    for node in _iter_nodes(model.graph):
        names.update(node.input)
        names.update(node.output)
        names.add(node.name)
    return names


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    ref = reference.astype(np.float64).ravel()
    err = approx.astype(np.float64).ravel() - ref
    noise = float(np.dot(err, err))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(max(float(np.dot(ref, ref)), 1e-300) / noise)


# Below this RMS a quantization step would be subnormal in float32 (the quantizers refuse
# it): such tensors (all zero, or decayed to ~1e-38) are stored exactly, which costs nothing.
_NEGLIGIBLE_RMS = 1e-30


def _negligible(array: np.ndarray) -> bool:
    return not np.any(array) or float(np.sqrt(np.mean(np.square(array, dtype=np.float64)))) < _NEGLIGIBLE_RMS


def _encode_one(array: np.ndarray, cand: Candidate, config: CompressConfig) -> tuple[EncodeResult, Action, float]:
    """Encode one initializer; returns the result, the action taken and the SQNR."""
    action = cand.action
    step_config = config.step_config(cand.name)
    if action is Action.QUANTIZE and (step_config is None or not np.all(np.isfinite(array)) or _negligible(array)):
        action = Action.LOSSLESS  # planned exact, all-zero, negligible or non-finite tensors stay exact
    if action is Action.LOSSLESS:
        result = encode_tensor(array, quantizer="raw", coder=config.coder)
        return result, action, math.inf
    seed = derive_seed(config.seed, cand.name)
    quantizer, qconfig = (config.quantizer_configs or {}).get(cand.name, (config.quantizer, step_config))
    qconfig = quantizers.by_name(quantizer).tensor_config(qconfig, cand.role, cand.shape)
    result = encode_tensor(array, quantizer=quantizer, coder=config.coder, config=qconfig, seed=seed)
    return result, action, sqnr_db(array, decode_blob(result.blob))


def compress_model(
    model: onnx.ModelProto,
    config: CompressConfig | None = None,
    *,
    inplace: bool = False,
    progress: Callable[[int], object] | None = None,
) -> tuple[onnx.ModelProto, CompressReport]:
    """Replace every selected weight by a decode node; return the model and a report.

    An initializer W of the main graph becomes a blob initializer plus a decode node at
    the head of the graph; a main-graph Constant node becomes a decode node in place; a
    Constant node inside a subgraph moves to the head of the main graph as a decode node
    (the subgraph reads it from the outer scope). Every blob is a main-graph initializer. ``progress(n)`` is called with the number of
    weights done after each tensor.
    """
    config = config or CompressConfig()
    if not inplace:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    original_bytes = model.ByteSize()
    pairs = _select_sources(model, config.min_elements)
    chosen = [(src, cand) for src, cand in pairs if cand.action is not Action.KEEP]
    taken = _all_names(model)

    def work(pair: tuple[Source, Candidate]):
        src, cand = pair
        try:
            return _encode_one(numpy_helper.to_array(src.tensor), cand, config)
        except UdcError as exc:
            raise type(exc)(f"{cand.name}: {exc}") from None

    results = []
    with ThreadPoolExecutor(max_workers=config.threads or os.cpu_count() or 1) as pool:
        # Workers only read the proto; every edit happens below, on this thread.
        for pair, outcome in zip(chosen, pool.map(work, chosen)):
            results.append((*pair, *outcome))
            if progress:
                progress(pair[1].numel)

    reports: list[TensorReport] = []
    kept_late: list[Candidate] = []
    head_nodes: list[onnx.NodeProto] = []  # decode nodes of main-graph initializers
    for src, cand, result, action, sqnr in results:
        dtype = result.header.dtype
        if action is Action.LOSSLESS and len(result.blob) >= cand.numel * dtype.numpy.itemsize:
            kept_late.append(Candidate(cand.name, cand.elem_type, cand.shape, Action.KEEP, "incompressible", cand.kind))
            continue
        reports.append(TensorReport(
            name=cand.name, shape=cand.shape, dtype=dtype.name, action=action,
            original_bytes=cand.numel * dtype.numpy.itemsize, blob_bytes=len(result.blob),
            entropy_bits=result.entropy_bits, step=result.header.step, sqnr_db=sqnr,
        ))
        blob = numpy_helper.from_array(np.frombuffer(result.blob, dtype=np.uint8), _unique_name(cand.name + BLOB_SUFFIX, taken))
        decode = helper.make_node(dtype.op_type, [blob.name], [cand.name], domain=DOMAIN,
                                  name=(src.node.name if src.node is not None and src.node.name else
                                        _unique_name(f"udc_decode/{cand.name}", taken)))
        if src.node is None:
            src.tensor.CopyFrom(blob)  # the initializer becomes the blob, in place
            head_nodes.append(decode)
        elif not src.in_subgraph:
            src.node.CopyFrom(decode)  # a main-graph Constant becomes the decode node, in place
            model.graph.initializer.append(blob)
        else:
            # A Constant inside a subgraph is hoisted: decoded once in the main graph and read
            # from the outer scope (onnxruntime cannot type-infer custom ops inside If/Loop bodies).
            kept = [n for n in src.graph.node if not (n.op_type == "Constant" and list(n.output) == [cand.name])]
            del src.graph.node[:]
            src.graph.node.extend(kept)
            model.graph.initializer.append(blob)
            head_nodes.append(decode)
        _set_value_info(model.graph, helper.make_tensor_value_info(cand.name, int(dtype), list(cand.shape)))

    if head_nodes:
        nodes = head_nodes + list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    if reports and not any(op.domain == DOMAIN for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    report = CompressReport(
        tensors=reports,
        kept=[c for _, c in pairs if c.action is Action.KEEP] + kept_late,
        original_model_bytes=original_bytes,
        compressed_model_bytes=model.ByteSize(),
    )
    return model, report


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
            if len(node.input) != 1 or node.input[0] not in inits:
                raise ModelError(f"decode node {node.name or node.output[0]} has no blob initializer in its graph")
            found.append((node, inits[node.input[0]]))
    return found


def has_decode_nodes(model: onnx.ModelProto) -> bool:
    return any(n.domain == DOMAIN for n in _iter_nodes(model.graph))


def remove_decode_nodes(graph: onnx.ModelProto | onnx.GraphProto, outputs: set[str]) -> None:
    """Delete a graph's decode nodes that produce ``outputs``."""
    graph = graph.graph if isinstance(graph, onnx.ModelProto) else graph
    keep = [n for n in graph.node if not (n.domain == DOMAIN and n.output and n.output[0] in outputs)]
    del graph.node[:]
    graph.node.extend(keep)


def blob_bytes(init: onnx.TensorProto) -> bytes:
    if init.data_type != TensorProto.UINT8:
        raise ModelError(f"blob {init.name} is not uint8")
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


def decompress_model(
    model: onnx.ModelProto,
    *,
    inplace: bool = False,
    decoder: Callable[[bytes], np.ndarray] = decode_blob,
) -> onnx.ModelProto:
    """Turn every decode node back into dense data: a plain ONNX model.

    In the main graph the blob initializer becomes the dense initializer; in a subgraph
    the decode node becomes a Constant node (where compress found it).
    """
    if not inplace:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    for depth, graph in enumerate(list(iter_graphs(model.graph))):
        main = depth == 0
        dense_names = set()
        blob_names = set()
        position = {init.name: i for i, init in enumerate(graph.initializer)}
        for node, init in decode_nodes(graph):
            name = node.output[0]
            dense = numpy_helper.from_array(decode_node(node, init, decoder), name)
            if main:
                graph.initializer[position[init.name]].CopyFrom(dense)
                dense_names.add(name)
            else:
                node.CopyFrom(helper.make_node("Constant", [], [name], name=node.name, value=dense))
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
    if not has_decode_nodes(model):
        ops = [op for op in model.opset_import if op.domain != DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(ops)
    return model
