"""Per-tensor view of a plain or compressed model (what ``onnx-udc inspect`` prints)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx
from onnx import TensorProto

from .. import coders, quantizers
from ..codec import inspect_blob
from .rewrite import blob_bytes, decode_nodes
from .select import weight_sources


@dataclass(frozen=True)
class TensorRow:
    name: str
    shape: tuple[int, ...]
    dtype: str
    storage: str  # "dense" or "<quantizer>+<coder>"
    nbytes: int  # bytes stored in the file for this tensor
    step: float = 0.0

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def compressed(self) -> bool:
        return not self.storage.startswith("dense")

    @property
    def bits_per_weight(self) -> float:
        return 8.0 * self.nbytes / self.numel if self.numel else 0.0


def _stored_bytes(init: TensorProto) -> int:
    if init.HasField("raw_data"):
        return len(init.raw_data)
    if init.data_location == TensorProto.EXTERNAL:
        length = {e.key: e.value for e in init.external_data}.get("length")
        if length is not None:
            return int(length)
    size = onnx.helper.tensor_dtype_to_np_dtype(init.data_type).itemsize if init.data_type else 0
    return math.prod(init.dims) * size


def inspect_model(model: onnx.ModelProto) -> list[TensorRow]:
    blobs = {init.name: node for node, init in decode_nodes(model)}
    rows = []
    for init in model.graph.initializer:
        node = blobs.get(init.name)
        if node is None:
            rows.append(TensorRow(init.name, tuple(init.dims), TensorProto.DataType.Name(init.data_type), "dense", _stored_bytes(init)))
            continue
        data = blob_bytes(init)
        header = inspect_blob(data)
        storage = f"{quantizers.by_id(header.quantizer).name}+{coders.by_id(header.coder).name}"
        rows.append(TensorRow(node.output[0], header.shape, header.dtype.name, storage, len(data), header.step))
    for src in weight_sources(model):
        if src.node is not None:
            rows.append(TensorRow(src.name, tuple(src.tensor.dims), TensorProto.DataType.Name(src.tensor.data_type),
                                  "dense (Constant node)", _stored_bytes(src.tensor)))
    return rows
