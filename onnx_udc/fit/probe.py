"""Run a model with some of its weights replaced, without rebuilding the session.

    model --(chosen weights become graph inputs with their values as defaults)--> session
    run(batches, {name: array})  -> outputs with those weights overridden, per batch

onnxruntime lets a feed override an initializer that is also a graph input, so one
session serves every noise-injection and every candidate allocation. Constant nodes of
any graph (If / Loop branches included) are turned into such initializers first.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper

from ..errors import ConfigError, ModelError
from ..graph.layers import constant_value, iter_graphs
from ..graph.modelio import PROTO_LIMIT, proto_size, save_model  # serialize through a file above this
from .calib import Feeds
from .fidelity import Outputs


def ort_failure(exc: Exception) -> str:
    """onnxruntime's exception in one line, naming the node when it says which:
    "node '/Concat_3' (Concat): Non concat axis dimensions must match: ..."."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    found = re.search(r"running (\S+) node\. Name:'([^']*)' Status Message: (.*)", text)
    if found:
        op, node, detail = found.groups()
        detail = re.sub(r"^\S+\.(?:cc|h|cpp):\d+ \S+ ", "", detail)
        return f"node {node!r} ({op}): {detail}"
    return text


class WeightProbe:
    """The model with ``names`` overridable; ``base[name]`` holds each original value."""

    def __init__(self, model: onnx.ModelProto, names: Iterable[str], threads: int | None = None,
                 outputs: Iterable[str] | None = None):
        wanted = set(names)
        probe = onnx.ModelProto()
        probe.CopyFrom(model)
        graph = probe.graph
        self.base: dict[str, np.ndarray] = {}
        inits = {i.name: i for i in graph.initializer}
        # Constant nodes among ``names`` (main graph or any subgraph) become main-graph
        # initializers; a subgraph reads them from the outer scope, as the decode nodes do.
        for g in iter_graphs(graph):
            kept_nodes = []
            for node in g.node:
                value = constant_value(node)
                if value is not None and node.output[0] in wanted and node.output[0] not in inits:
                    tensor = onnx.TensorProto()
                    tensor.CopyFrom(value)
                    tensor.name = node.output[0]
                    graph.initializer.append(tensor)
                    inits[tensor.name] = graph.initializer[-1]
                    continue
                kept_nodes.append(node)
            if len(kept_nodes) != len(g.node):
                del g.node[:]
                g.node.extend(kept_nodes)
        existing_inputs = {v.name for v in graph.input}
        for name in sorted(wanted & set(inits)):
            tensor = inits[name]
            self.base[name] = numpy_helper.to_array(tensor)
            if name not in existing_inputs:
                graph.input.append(helper.make_tensor_value_info(name, tensor.data_type, list(tensor.dims)))
        self.names = sorted(self.base)
        self.output_names = [o.name for o in graph.output]
        if outputs is not None:  # the outputs fidelity is measured on, in the caller's order
            wanted_out = list(outputs)
            unknown = [o for o in wanted_out if o not in self.output_names]
            if unknown:
                raise ConfigError(f"the model has no output(s) {unknown}; its outputs are {self.output_names}")
            self.output_names = wanted_out
        options = ort.SessionOptions()
        options.log_severity_level = 4  # errors come back as exceptions: no log lines
        if threads:
            options.intra_op_num_threads = threads
        try:
            if proto_size(probe) < PROTO_LIMIT:
                self.session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
            else:
                with tempfile.TemporaryDirectory(prefix="udc-probe-") as tmp:
                    path = Path(tmp) / "probe.onnx"
                    save_model(probe, path)  # the large tensors in probe.onnx.data
                    self.session = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"onnxruntime cannot load the model for calibration: {ort_failure(exc)}") from None

    def run(self, batches: list[Feeds], overrides: Mapping[str, np.ndarray] | None = None) -> Outputs:
        feeds_w = {name: np.ascontiguousarray(value, dtype=self.base[name].dtype).reshape(self.base[name].shape)
                   for name, value in (overrides or {}).items()}
        outputs: Outputs = []
        for batch in batches:
            try:
                outputs.append(self.session.run(self.output_names, {**batch, **feeds_w}))
            except Exception as exc:
                raise ModelError(f"onnxruntime failed on a calibration batch: {ort_failure(exc)}") from None
        return outputs
