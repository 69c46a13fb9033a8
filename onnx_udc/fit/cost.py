"""What one calibration sample costs the model: multiply-accumulates, counted from the graph.

    model + one calibration batch --shapes of that batch--> onnx shape inference
        --> per weight-reading node (Conv, ConvTranspose, MatMul, Gemm): output elements x
            the products per output element --> MACs per sample

The default calibration sample counts (pipeline.compress.default_samples, the
sensitivity probing of fit.allocate) are budgets in these MACs, not in seconds: the same
command on the same model and data reads the same samples on any machine, loaded or not.
A node whose shapes inference cannot give counts its weight's elements once (a lower
bound: every weight is read at least once per sample).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper

from .calib import batch_rows, model_inputs

SMALL_INITIALIZER = 1024  # elements: kept with their values for inference (Reshape shapes, ...)


def macs_per_sample(model: onnx.ModelProto, batch: dict[str, np.ndarray]) -> float:
    """Multiply-accumulates of one sample of ``batch`` (a feed dict) through ``model``'s main
    graph: Conv / ConvTranspose / MatMul / Gemm only (the rest is small beside them)."""
    shapes = _inferred_shapes(model, batch)
    weights = {i.name: tuple(i.dims) for i in model.graph.initializer}
    total = 0.0
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm") or len(node.input) < 2:
            continue
        w = weights.get(node.input[1]) or shapes.get(node.input[1])
        out = shapes.get(node.output[0])
        x = shapes.get(node.input[0])
        if w is None:
            continue
        macs = _node_macs(node, x, w, out)
        total += macs if macs is not None else float(math.prod(w))
    rows = max(1, batch_rows(batch))
    return max(total / rows, 1.0)


def _node_macs(node: onnx.NodeProto, x, w, out) -> float | None:
    """MACs of ``node`` over its whole batch (None: a shape is unknown)."""
    if node.op_type == "Conv":
        if out is None or len(w) < 2:
            return None
        return float(math.prod(out)) * float(math.prod(w[1:]))
    if node.op_type == "ConvTranspose":
        if x is None or len(w) < 2:
            return None
        return float(math.prod(x)) * float(math.prod(w[1:]))
    if node.op_type == "Gemm":
        if out is None or not w:
            return None
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        k = w[1] if trans_b and len(w) > 1 else w[0]
        return float(math.prod(out)) * float(k)
    if out is None or x is None or not x:  # MatMul: k is A's last axis
        return None
    return float(math.prod(out)) * float(x[-1])


def _inferred_shapes(model: onnx.ModelProto, batch: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """name -> static shape of every value of the main graph shape inference can give with the
    inputs fixed to ``batch``'s shapes; large initializers enter as typed inputs (no copy of
    their data)."""
    g = model.graph
    inputs = []
    for v in model_inputs(model):
        arr = batch.get(v.name)
        elem = v.type.tensor_type.elem_type
        if arr is None or not elem:
            inputs.append(v)
            continue
        inputs.append(helper.make_tensor_value_info(v.name, elem, list(np.shape(arr))))
    small, large = [], []
    for init in g.initializer:
        if math.prod(init.dims) <= SMALL_INITIALIZER:
            small.append(init)
        else:
            large.append(helper.make_tensor_value_info(init.name, init.data_type, list(init.dims)))
    graph = helper.make_graph(list(g.node), g.name or "cost", inputs + large, list(g.output), small)
    probe = helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)
    probe.functions.extend(model.functions)
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, strict_mode=False, data_prop=True)
    except Exception:  # noqa: BLE001 (inference is best effort: unknown shapes count as weights)
        inferred = probe
    out: dict[str, tuple[int, ...]] = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        if v.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            out[v.name] = tuple(int(d.dim_value) for d in dims)
    return out


# ---- fitting work: the budgets of the fitted candidates (fit.candidates) ----------------
# Error feedback and product quantization fitting are bounded by a budget of *work*,
# predicted from the layer's shape before it is fitted, never by a clock: the same command
# on the same model and data tries the same candidates on any machine, loaded or not. One
# work unit is about one second of one core of the reference machine (a 2-core Xeon, numpy
# with one BLAS thread); the constants were fitted there on real layer shapes (fmnist and
# depthwise convolutions, MiniLM-like 384 x 1536 MatMuls; within 2x of the measured time).
FEEDBACK_COLUMN = 3.5e-5  # per column and pass: the loop's numpy calls on one column
FEEDBACK_MAC = 5e-10  # per multiply-add of a pass's updates
FEEDBACK_FACTOR = 4e-10  # per gc * K^3 of the Cholesky factor of the inverse Gram
PQ_PRODUCT = 2e-8  # per weight x centroid of one codebook size (EM on a sample, assignment, fine-tuning)
LAYER_OVERHEAD = 1e-3  # per layer fitted


def feedback_work(rows: int, cols: int, groups: int, passes: int, block: int = 128) -> float:
    """Work units of error feedback on one layer of rows x cols weights (fit.feedback,
    W [O, K], Gram [gc, K, K]): the inverse factor once, then ``passes`` index passes (one
    per step and variant tried), each K columns of eager updates within blocks of
    ``block`` columns and one product per block for the rest."""
    o, k, gc = float(rows), float(cols), float(max(1, groups))
    factor = FEEDBACK_FACTOR * gc * k ** 3 + LAYER_OVERHEAD
    one_pass = FEEDBACK_COLUMN * k + FEEDBACK_MAC * o * k * (min(k, float(block)) + k / 2.0)
    return factor + max(0, passes) * one_pass


def pq_work(numel: int, ks) -> float:
    """Work units of fitting one layer of ``numel`` weights at each codebook size in ``ks``
    (fit.candidates._fit_layer: EM on a sample of blocks, every block assigned, centroid
    fine-tuning)."""
    return PQ_PRODUCT * float(numel) * float(sum(ks)) + LAYER_OVERHEAD
