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
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .codec import EncodeResult, decode_blob, encode_tensor
from .dither import derive_seed
from .errors import ModelError, UdcError
from .format import BLOB_SUFFIX, DECODE_OP_TYPES, DOMAIN, DOMAIN_VERSION, DType
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
    """

    quantizer: str = "scalar"
    coder: str = "brotli"
    scalar: ScalarConfig = field(default_factory=ScalarConfig)
    seed: int = 0
    min_elements: int = 1024
    threads: int | None = None


@dataclass(frozen=True)
class Candidate:
    name: str
    elem_type: int  # TensorProto.DataType
    shape: tuple[int, ...]
    action: Action
    reason: str

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


def _iter_nodes(graph: onnx.GraphProto) -> Iterator[onnx.NodeProto]:
    """Every node of a graph and, recursively, of its subgraphs."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _iter_nodes(sub)


def consumers(model: onnx.ModelProto) -> dict[str, list[tuple[str, str, int]]]:
    """name -> [(domain, op_type, input index)] over the graph and all subgraphs."""
    uses: dict[str, list[tuple[str, str, int]]] = {}
    for node in _iter_nodes(model.graph):
        for index, name in enumerate(node.input):
            if name:
                uses.setdefault(name, []).append((node.domain, node.op_type, index))
    return uses


_FLOAT_TYPES = {TensorProto.FLOAT, TensorProto.FLOAT16}
_INT_TYPES = {TensorProto.INT8, TensorProto.UINT8, TensorProto.INT32}


def select(model: onnx.ModelProto, min_elements: int = 1024) -> list[Candidate]:
    """Decide, for every initializer of the main graph, what to do with it. Pure."""
    uses = consumers(model)
    graph_io = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    out = []
    for init in model.graph.initializer:
        shape = tuple(int(d) for d in init.dims)
        roles = {role_of(d, op, i) for d, op, i in uses.get(init.name, [])}

        def verdict(action: Action, reason: str) -> Candidate:
            return Candidate(init.name, init.data_type, shape, action, reason)

        if init.name in graph_io:
            out.append(verdict(Action.KEEP, "is a graph input or output"))
        elif not roles:
            out.append(verdict(Action.KEEP, "unused"))
        elif math.prod(shape) < min_elements:
            out.append(verdict(Action.KEEP, f"fewer than {min_elements} elements"))
        elif init.data_type in _FLOAT_TYPES and roles == {Role.WEIGHT}:
            out.append(verdict(Action.QUANTIZE, "float weight"))
        elif init.data_type in _INT_TYPES and roles == {Role.INT_WEIGHT}:
            out.append(verdict(Action.LOSSLESS, "already-quantized integer weight"))
        elif Role.OTHER in roles:
            ops = sorted({op for d, op, i in uses[init.name] if role_of(d, op, i) is Role.OTHER})
            out.append(verdict(Action.KEEP, f"not a weight input of {', '.join(ops)}"))
        else:
            out.append(verdict(Action.KEEP, f"element type {TensorProto.DataType.Name(init.data_type)} not compressed"))
    return out


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


def _encode_one(array: np.ndarray, cand: Candidate, config: CompressConfig) -> tuple[EncodeResult, Action, float]:
    """Encode one initializer; returns the result, the action taken and the SQNR."""
    action = cand.action
    if action is Action.QUANTIZE and (not np.all(np.isfinite(array)) or not np.any(array)):
        action = Action.LOSSLESS  # all-zero or non-finite tensors stay exact
    if action is Action.LOSSLESS:
        result = encode_tensor(array, quantizer="raw", coder=config.coder)
        return result, action, math.inf
    seed = derive_seed(config.seed, cand.name)
    result = encode_tensor(array, quantizer=config.quantizer, coder=config.coder, config=config.scalar, seed=seed)
    return result, action, sqnr_db(array, decode_blob(result.blob))


def compress_model(
    model: onnx.ModelProto,
    config: CompressConfig | None = None,
    *,
    inplace: bool = False,
    progress: Callable[[int], object] | None = None,
) -> tuple[onnx.ModelProto, CompressReport]:
    """Replace every selected initializer by a decode node; return the model and a report.

    ``progress(n)`` is called with the number of weights done after each tensor.
    """
    config = config or CompressConfig()
    if not inplace:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    original_bytes = model.ByteSize()
    candidates = select(model, config.min_elements)
    chosen = [c for c in candidates if c.action is not Action.KEEP]
    by_name = {init.name: i for i, init in enumerate(model.graph.initializer)}
    taken = _all_names(model)

    def work(cand: Candidate):
        init = model.graph.initializer[by_name[cand.name]]
        if init.data_location == TensorProto.EXTERNAL:
            raise ModelError(f"initializer {cand.name}: external data not loaded")
        array = numpy_helper.to_array(init)
        try:
            return _encode_one(array, cand, config)
        except UdcError as exc:
            raise type(exc)(f"{cand.name}: {exc}") from None

    threads = config.threads or os.cpu_count() or 1
    reports: list[TensorReport] = []
    new_nodes = []
    value_infos = []
    results = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        # Workers only read the proto; every edit happens below, on this thread.
        for cand, outcome in zip(chosen, pool.map(work, chosen)):
            results.append((cand, *outcome))
            if progress:
                progress(cand.numel)

    kept_late = []
    for cand, result, action, sqnr in results:
        dtype = result.header.dtype
        if action is Action.LOSSLESS and len(result.blob) >= cand.numel * dtype.numpy.itemsize:
            kept_late.append(Candidate(cand.name, cand.elem_type, cand.shape, Action.KEEP, "incompressible"))
            continue
        index = by_name[cand.name]
        old = model.graph.initializer[index]
        blob_name = _unique_name(cand.name + BLOB_SUFFIX, taken)
        reports.append(
            TensorReport(
                name=cand.name, shape=cand.shape, dtype=dtype.name, action=action,
                original_bytes=cand.numel * dtype.numpy.itemsize,
                blob_bytes=len(result.blob), entropy_bits=result.entropy_bits,
                step=result.header.step, sqnr_db=sqnr,
            )
        )
        old.CopyFrom(numpy_helper.from_array(np.frombuffer(result.blob, dtype=np.uint8), blob_name))
        new_nodes.append(
            helper.make_node(
                dtype.op_type, [blob_name], [cand.name], name=_unique_name(f"udc_decode/{cand.name}", taken),
                domain=DOMAIN,
            )
        )
        value_infos.append(helper.make_tensor_value_info(cand.name, int(dtype), list(cand.shape)))

    if new_nodes:
        nodes = new_nodes + list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        decoded = {v.name for v in value_infos}
        kept_vi = [v for v in model.graph.value_info if v.name not in decoded]
        del model.graph.value_info[:]
        model.graph.value_info.extend(kept_vi + value_infos)
        if not any(op.domain == DOMAIN for op in model.opset_import):
            model.opset_import.append(helper.make_opsetid(DOMAIN, DOMAIN_VERSION))
    report = CompressReport(
        tensors=reports,
        kept=[c for c in candidates if c.action is Action.KEEP] + kept_late,
        original_model_bytes=original_bytes,
        compressed_model_bytes=model.ByteSize(),
    )
    return model, report


def decode_nodes(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, onnx.TensorProto]]:
    """The main graph's decode nodes whose blob is an initializer, with that initializer."""
    inits = {init.name: init for init in model.graph.initializer}
    found = []
    for node in model.graph.node:
        if node.domain == DOMAIN and node.op_type in DECODE_OP_TYPES:
            if len(node.input) != 1 or node.input[0] not in inits:
                raise ModelError(f"decode node {node.name or node.output[0]} has no blob initializer")
            found.append((node, inits[node.input[0]]))
    return found


def remove_decode_nodes(model: onnx.ModelProto, outputs: set[str]) -> None:
    """Delete the main graph's decode nodes that produce ``outputs``."""
    keep = [n for n in model.graph.node if not (n.domain == DOMAIN and n.output and n.output[0] in outputs)]
    del model.graph.node[:]
    model.graph.node.extend(keep)


def blob_bytes(init: onnx.TensorProto) -> bytes:
    if init.data_type != TensorProto.UINT8:
        raise ModelError(f"blob {init.name} is not uint8")
    return init.raw_data if init.HasField("raw_data") else bytes(numpy_helper.to_array(init).tobytes())


def decompress_model(
    model: onnx.ModelProto,
    *,
    inplace: bool = False,
    decoder: Callable[[bytes], np.ndarray] = decode_blob,
) -> onnx.ModelProto:
    """Turn every decode node back into a dense initializer: a plain ONNX model."""
    if not inplace:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        model = copy
    found = decode_nodes(model)
    dense_names = set()
    position = {init.name: i for i, init in enumerate(model.graph.initializer)}
    for node, init in found:
        try:
            array = decoder(blob_bytes(init))
        except UdcError as exc:
            raise type(exc)(f"{node.output[0]}: {exc}") from None
        expected = DType.from_op_type(node.op_type)
        if DType.from_numpy(array.dtype) is not expected:
            raise ModelError(f"{node.output[0]}: blob holds {array.dtype}, op {node.op_type} outputs {expected.name}")
        model.graph.initializer[position[init.name]].CopyFrom(numpy_helper.from_array(array, node.output[0]))
        dense_names.add(node.output[0])
    remove_decode_nodes(model, dense_names)
    vi = [v for v in model.graph.value_info if v.name not in dense_names]
    del model.graph.value_info[:]
    model.graph.value_info.extend(vi)
    if not any(n.domain == DOMAIN for n in _iter_nodes(model.graph)):
        ops = [op for op in model.opset_import if op.domain != DOMAIN]
        del model.opset_import[:]
        model.opset_import.extend(ops)
    return model
