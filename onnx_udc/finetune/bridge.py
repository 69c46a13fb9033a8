"""A small ONNX-to-torch interpreter: the model's graph run node by node with torch ops, so
that gradients reach the parameters the decoder reads.

    Bridge(model)                 every node checked against the op table (UnsupportedOpError
                                  names the first op it cannot run); initializers -> torch once;
                                  decode nodes (ai.onnx_udc) -> their blobs decoded once (codec)
    bridge.run(feeds, weights)    feeds: input name -> tensor; weights: value name -> tensor
                                  (differentiable, e.g. centroids[indices]) replacing the
                                  initializer or decode output of that name -> outputs [list]

Only the main graph is run (no If / Loop / Scan: unsupported). Ops follow the ONNX
operator spec for opset 11-21 in inference mode (BatchNormalization uses its running
statistics, Dropout is the identity). The op table is a registry from op type to a small
function ``(torch, F, attrs, inputs) -> output(s)``; adding an op is one function.
torch is imported by the functions that use it (the core install stays torch-free).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..format import DECODE_OP_TYPES, DOMAIN
from .errors import UnsupportedOpError, require_torch

OpFn = Callable[..., object]
OPS: dict[str, OpFn] = {}


def op(*names: str):
    """Register a function for one or more op types of the default domain."""
    def deco(fn: OpFn) -> OpFn:
        for n in names:
            OPS[n] = fn
        return fn
    return deco


def supported_ops() -> list[str]:
    return sorted(OPS)


# ---- attributes and dtypes -----------------------------------------------------------
@dataclass(frozen=True)
class Attrs:
    """One node's attributes (decoded once) plus the opset of the default domain."""

    values: dict
    opset: int
    op_type: str

    def get(self, name: str, default=None):
        return self.values.get(name, default)


def _attrs(node: onnx.NodeProto, opset: int) -> Attrs:
    values = {}
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH or a.type == onnx.AttributeProto.GRAPHS:
            raise UnsupportedOpError(node.op_type, "subgraphs are not run by the bridge")
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        values[a.name] = v
    return Attrs(values, opset, node.op_type)


_TORCH_DTYPES = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.BFLOAT16: "bfloat16", onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT16: "int16", onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


def torch_dtype(t, onnx_type: int):
    try:
        return getattr(t, _TORCH_DTYPES[onnx_type])
    except KeyError:
        raise UnsupportedOpError("Cast", f"element type {onnx_type}") from None


def to_tensor(array: np.ndarray):
    """numpy -> torch (a copy; unsigned types torch lacks are widened to int64)."""
    t = require_torch()
    a = np.asarray(array)
    if a.dtype in (np.uint16, np.uint32, np.uint64):
        a = a.astype(np.int64)
    return t.from_numpy(np.array(a, copy=True, order="C"))  # (ascontiguousarray makes 0-D arrays 1-D)


def _ints(x) -> list[int]:
    return [int(v) for v in x.reshape(-1).tolist()]


# ---- the interpreter -----------------------------------------------------------------
class Bridge:
    """The main graph of ``model`` as a torch function of its inputs and of named weights."""

    def __init__(self, model: onnx.ModelProto, trainable: set[str] | frozenset[str] = frozenset()):
        from ..codec import decode_blob
        from ..graph.rewrite import blob_bytes

        require_torch()
        graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        inits = {i.name: i for i in graph.initializer}
        self.nodes: list[tuple[OpFn, Attrs, list[str], list[str]]] = []
        self.constants: dict[str, object] = {}
        decoded = set()
        for node in graph.node:
            if node.domain == DOMAIN and node.op_type in DECODE_OP_TYPES:
                out = node.output[0]
                decoded.add(node.input[0])
                if out not in trainable:
                    self.constants[out] = to_tensor(decode_blob(blob_bytes(inits[node.input[0]])))
                continue
            if node.domain not in ("", "ai.onnx") or node.op_type not in OPS:
                kind = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
                raise UnsupportedOpError(kind)
            self.nodes.append((OPS[node.op_type], _attrs(node, self.opset), list(node.input), list(node.output)))
        self.originals: dict[str, object] = {}  # the initializers that ``weights`` replace (the teacher's)
        for name, init in inits.items():
            if name not in decoded:
                target = self.originals if name in trainable else self.constants
                target[name] = to_tensor(numpy_helper.to_array(init))
        self.inputs = [v.name for v in graph.input if v.name not in inits]
        self.outputs = [v.name for v in graph.output]
        self._last_use = self._lifetimes()

    def _lifetimes(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for i, (_, _, ins, _) in enumerate(self.nodes):
            for n in ins:
                last[n] = i
        for n in self.outputs:
            last[n] = len(self.nodes)
        return last

    def run(self, feeds: Mapping[str, object], weights: Mapping[str, object] | None = None) -> list:
        """Outputs (torch tensors, in graph output order) for ``feeds`` (input name -> tensor
        or array), with ``weights`` (value name -> tensor) in place of those values."""
        t = require_torch()
        import torch.nn.functional as F

        missing = [n for n in self.inputs if n not in feeds]
        if missing:
            from ..errors import ConfigError

            raise ConfigError(f"feeds lack model input(s) {missing}")
        env = dict(self.constants)
        env.update(weights or {})
        for name, value in feeds.items():
            env[name] = value if isinstance(value, t.Tensor) else to_tensor(value)
        for i, (fn, attrs, ins, outs) in enumerate(self.nodes):
            args = [env[n] if n else None for n in ins]
            try:
                result = fn(t, F, attrs, args)
            except UnsupportedOpError:
                raise
            except (RuntimeError, ValueError, IndexError, TypeError) as exc:
                raise UnsupportedOpError(attrs.op_type, f"node output {outs[0]!r}: {exc}") from None
            results = result if isinstance(result, (tuple, list)) else (result,)
            for n, v in zip(outs, results):
                if n:
                    env[n] = v
            for n in ins:  # free what no later node reads (not the weights: the caller holds them)
                if n and self._last_use.get(n) == i and n not in self.constants:
                    env.pop(n, None)
        return [env[n] for n in self.outputs]


# ---- elementwise -----------------------------------------------------------------------
def _binary(fn):
    return lambda t, F, a, x: fn(t, x[0], x[1])


OPS.update({
    "Add": _binary(lambda t, p, q: p + q),
    "Sub": _binary(lambda t, p, q: p - q),
    "Mul": _binary(lambda t, p, q: p * q),
    "Pow": _binary(lambda t, p, q: t.pow(p, q)),
    "Equal": _binary(lambda t, p, q: p == q),
    "Less": _binary(lambda t, p, q: p < q),
    "Greater": _binary(lambda t, p, q: p > q),
    "LessOrEqual": _binary(lambda t, p, q: p <= q),
    "GreaterOrEqual": _binary(lambda t, p, q: p >= q),
    "And": _binary(lambda t, p, q: t.logical_and(p, q)),
    "Or": _binary(lambda t, p, q: t.logical_or(p, q)),
    "Relu": lambda t, F, a, x: F.relu(x[0]),
    "Sigmoid": lambda t, F, a, x: t.sigmoid(x[0]),
    "Tanh": lambda t, F, a, x: t.tanh(x[0]),
    "Erf": lambda t, F, a, x: t.erf(x[0]),
    "Exp": lambda t, F, a, x: t.exp(x[0]),
    "Log": lambda t, F, a, x: t.log(x[0]),
    "Sqrt": lambda t, F, a, x: t.sqrt(x[0]),
    "Neg": lambda t, F, a, x: -x[0],
    "Abs": lambda t, F, a, x: t.abs(x[0]),
    "Reciprocal": lambda t, F, a, x: t.reciprocal(x[0]),
    "Not": lambda t, F, a, x: t.logical_not(x[0]),
    "Softplus": lambda t, F, a, x: F.softplus(x[0]),
    "Identity": lambda t, F, a, x: x[0],
    "Dropout": lambda t, F, a, x: (x[0], t.ones_like(x[0], dtype=t.bool)),
    "Where": lambda t, F, a, x: t.where(x[0], x[1], x[2]),
    "LeakyRelu": lambda t, F, a, x: F.leaky_relu(x[0], a.get("alpha", 0.01)),
    "Elu": lambda t, F, a, x: F.elu(x[0], a.get("alpha", 1.0)),
    "HardSigmoid": lambda t, F, a, x: t.clamp(a.get("alpha", 0.2) * x[0] + a.get("beta", 0.5), 0.0, 1.0),
    "HardSwish": lambda t, F, a, x: F.hardswish(x[0]),
    "PRelu": lambda t, F, a, x: t.where(x[0] >= 0, x[0], x[0] * x[1]),
    "Gelu": lambda t, F, a, x: F.gelu(x[0], approximate=a.get("approximate", "none")),
})


@op("Div")
def _div(t, F, a, x):
    p, q = x
    if not p.is_floating_point() and not q.is_floating_point():
        return t.div(p, q, rounding_mode="trunc")
    return p / q


@op("Max", "Min", "Sum", "Mean")
def _variadic(t, F, a, x):
    out = x[0]
    for v in x[1:]:
        out = {"Max": t.maximum, "Min": t.minimum}.get(a.op_type, t.add)(out, v)
    return out / len(x) if a.op_type == "Mean" else out


@op("Clip")
def _clip(t, F, a, x):
    lo = x[1] if len(x) > 1 and x[1] is not None else a.get("min")
    hi = x[2] if len(x) > 2 and x[2] is not None else a.get("max")
    out = x[0]
    if lo is not None:
        out = t.maximum(out, lo if isinstance(lo, t.Tensor) else t.tensor(lo, dtype=out.dtype))
    if hi is not None:
        out = t.minimum(out, hi if isinstance(hi, t.Tensor) else t.tensor(hi, dtype=out.dtype))
    return out


@op("Cast")
def _cast(t, F, a, x):
    return x[0].to(torch_dtype(t, a.get("to")))


# ---- linear layers ---------------------------------------------------------------------
@op("MatMul")
def _matmul(t, F, a, x):
    return t.matmul(x[0], x[1])


@op("Gemm")
def _gemm(t, F, a, x):
    p = x[0].transpose(-1, -2) if a.get("transA", 0) else x[0]
    q = x[1].transpose(-1, -2) if a.get("transB", 0) else x[1]
    out = a.get("alpha", 1.0) * (p @ q) if a.get("alpha", 1.0) != 1.0 else p @ q
    if len(x) > 2 and x[2] is not None:
        c = x[2] if a.get("beta", 1.0) == 1.0 else a.get("beta", 1.0) * x[2]
        out = out + c
    return out


def _spatial_pads(a: Attrs, x, kernel: list[int], strides: list[int], dilations: list[int]) -> list[int]:
    """ONNX pads [b1, b2, .., e1, e2, ..] for the node's auto_pad rule."""
    dims = len(kernel)
    auto = a.get("auto_pad", "NOTSET")
    if auto in ("NOTSET", ""):
        return list(a.get("pads", [0] * (2 * dims)))
    if auto == "VALID":
        return [0] * (2 * dims)
    begin, end = [], []
    for i in range(dims):
        size = x.shape[2 + i]
        out = -(-size // strides[i])
        total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - size)
        small, big = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else big)
        end.append(big if auto == "SAME_UPPER" else small)
    return begin + end


def _pad_input(t, F, x, pads: list[int], value: float = 0.0):
    """x [N, C, *spatial] padded with ONNX pads; returns (x, symmetric pads for torch)."""
    dims = len(pads) // 2
    begin, end = pads[:dims], pads[dims:]
    if begin == end:
        return x, begin
    torch_pads = []
    for i in reversed(range(dims)):  # F.pad wants the last axis first
        torch_pads += [begin[i], end[i]]
    return F.pad(x, torch_pads, value=value), [0] * dims


@op("Conv")
def _conv(t, F, a, x):
    w = x[1]
    dims = w.dim() - 2
    if dims not in (1, 2, 3):
        raise UnsupportedOpError("Conv", f"{dims}-D convolution")
    strides = list(a.get("strides", [1] * dims))
    dilations = list(a.get("dilations", [1] * dims))
    kernel = list(w.shape[2:])
    inp, pad = _pad_input(t, F, x[0], _spatial_pads(a, x[0], kernel, strides, dilations))
    bias = x[2] if len(x) > 2 else None
    fn = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    return fn(inp, w, bias, stride=strides, padding=pad, dilation=dilations, groups=a.get("group", 1))


@op("ConvTranspose")
def _conv_transpose(t, F, a, x):
    w = x[1]
    dims = w.dim() - 2
    if dims not in (1, 2, 3) or a.get("auto_pad", "NOTSET") not in ("NOTSET", "") or a.get("output_shape"):
        raise UnsupportedOpError("ConvTranspose", "only explicit pads, 1-3 spatial axes")
    pads = list(a.get("pads", [0] * (2 * dims)))
    if pads[:dims] != pads[dims:]:
        raise UnsupportedOpError("ConvTranspose", "asymmetric pads")
    fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[dims - 1]
    return fn(x[0], w, x[2] if len(x) > 2 else None, stride=list(a.get("strides", [1] * dims)),
              padding=pads[:dims], output_padding=list(a.get("output_padding", [0] * dims)),
              groups=a.get("group", 1), dilation=list(a.get("dilations", [1] * dims)))


# ---- normalisation and pooling ---------------------------------------------------------
@op("BatchNormalization")
def _batchnorm(t, F, a, x):
    return F.batch_norm(x[0], x[3], x[4], x[1], x[2], training=False, eps=a.get("epsilon", 1e-5))


@op("LayerNormalization")
def _layernorm(t, F, a, x):
    axis = a.get("axis", -1)
    axis = axis if axis >= 0 else x[0].dim() + axis
    shape = list(x[0].shape[axis:])
    bias = x[2] if len(x) > 2 else None
    return F.layer_norm(x[0], shape, x[1].reshape(shape), None if bias is None else bias.reshape(shape),
                        eps=a.get("epsilon", 1e-5))


@op("InstanceNormalization")
def _instancenorm(t, F, a, x):
    return F.instance_norm(x[0], weight=x[1], bias=x[2], eps=a.get("epsilon", 1e-5))


@op("GlobalAveragePool")
def _gap(t, F, a, x):
    return x[0].mean(dim=tuple(range(2, x[0].dim())), keepdim=True)


@op("GlobalMaxPool")
def _gmp(t, F, a, x):
    return x[0].amax(dim=tuple(range(2, x[0].dim())), keepdim=True)


@op("MaxPool", "AveragePool")
def _pool(t, F, a, x):
    kernel = list(a.get("kernel_shape"))
    dims = len(kernel)
    if dims not in (1, 2, 3) or (a.op_type == "MaxPool" and len(x) > 1):
        raise UnsupportedOpError(a.op_type, "1-3 spatial axes, no indices output")
    strides = list(a.get("strides", [1] * dims))
    dilations = list(a.get("dilations", [1] * dims))
    pads = _spatial_pads(a, x[0], kernel, strides, dilations)
    ceil = bool(a.get("ceil_mode", 0))
    if a.op_type == "MaxPool":
        inp, pad = _pad_input(t, F, x[0], pads, value=-math.inf)
        fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[dims - 1]
        return fn(inp, kernel, strides, pad, dilations, ceil_mode=ceil)
    if dilations != [1] * dims:
        raise UnsupportedOpError("AveragePool", "dilations")
    include = bool(a.get("count_include_pad", 0))
    inp, pad = _pad_input(t, F, x[0], pads) if include else (x[0], pads[:dims])
    if pads[:dims] != pads[dims:] and not include:
        raise UnsupportedOpError("AveragePool", "asymmetric pads without count_include_pad")
    fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[dims - 1]
    return fn(inp, kernel, strides, pad, ceil_mode=ceil, count_include_pad=include)


def _softmax_axis(a: Attrs, x) -> int:
    return a.get("axis", -1 if a.opset >= 13 else 1)


@op("Softmax", "LogSoftmax")
def _softmax(t, F, a, x):
    axis = _softmax_axis(a, x[0])
    fn = t.softmax if a.op_type == "Softmax" else t.log_softmax
    if a.opset >= 13:
        return fn(x[0], dim=axis)
    axis = axis if axis >= 0 else x[0].dim() + axis  # before opset 13: over the flattened tail
    flat = x[0].reshape(math.prod(x[0].shape[:axis]), -1)
    return fn(flat, dim=1).reshape(x[0].shape)


# ---- reductions -------------------------------------------------------------------------
@op("ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare")
def _reduce(t, F, a, x):
    axes = _ints(x[1]) if len(x) > 1 and x[1] is not None else a.get("axes")
    keep = bool(a.get("keepdims", 1))
    v = x[0]
    if axes is None or len(axes) == 0:
        if a.get("noop_with_empty_axes", 0):
            return v
        axes = list(range(v.dim()))
    dims = tuple(int(d) for d in axes)
    kind = a.op_type
    if kind == "ReduceMean":
        return v.mean(dim=dims, keepdim=keep)
    if kind == "ReduceSum":
        return v.sum(dim=dims, keepdim=keep)
    if kind == "ReduceSumSquare":
        return (v * v).sum(dim=dims, keepdim=keep)
    if kind == "ReduceL2":
        return (v * v).sum(dim=dims, keepdim=keep).sqrt()
    if kind == "ReduceMax":
        return v.amax(dim=dims, keepdim=keep)
    if kind == "ReduceMin":
        return v.amin(dim=dims, keepdim=keep)
    out = v
    for d in sorted((d % v.dim() for d in dims), reverse=True):
        out = out.prod(dim=d, keepdim=keep)
    return out


# ---- shapes -------------------------------------------------------------------------------
@op("Reshape")
def _reshape(t, F, a, x):
    shape = _ints(x[1])
    if not a.get("allowzero", 0):
        shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x[0].reshape(shape)


@op("Flatten")
def _flatten(t, F, a, x):
    axis = a.get("axis", 1)
    axis = axis if axis >= 0 else x[0].dim() + axis
    return x[0].reshape(math.prod(x[0].shape[:axis]), -1)


@op("Transpose")
def _transpose(t, F, a, x):
    perm = a.get("perm") or list(reversed(range(x[0].dim())))
    return x[0].permute(*perm)


def _axes(a: Attrs, x) -> list[int] | None:
    if len(x) > 1 and x[1] is not None:
        return _ints(x[1])
    return a.get("axes")


@op("Unsqueeze")
def _unsqueeze(t, F, a, x):
    axes = _axes(a, x)
    rank = x[0].dim() + len(axes)
    out = x[0]
    for ax in sorted(ax % rank for ax in axes):
        out = out.unsqueeze(ax)
    return out


@op("Squeeze")
def _squeeze(t, F, a, x):
    axes = _axes(a, x)
    if axes is None:
        return x[0].squeeze()
    out = x[0]
    for ax in sorted((ax % x[0].dim() for ax in axes), reverse=True):
        out = out.squeeze(ax)
    return out


@op("Concat")
def _concat(t, F, a, x):
    return t.cat([v for v in x if v is not None], dim=a.get("axis"))


@op("Split")
def _split(t, F, a, x):
    axis = a.get("axis", 0)
    split = _ints(x[1]) if len(x) > 1 and x[1] is not None else a.get("split")
    if split is None:
        parts = a.get("num_outputs")
        if parts is None:
            raise UnsupportedOpError("Split", "equal split without num_outputs")
        size = -(-x[0].shape[axis] // parts)
        return tuple(t.split(x[0], size, dim=axis))
    return tuple(t.split(x[0], list(split), dim=axis))


@op("Shape")
def _shape(t, F, a, x):
    dims = list(x[0].shape)
    start, end = a.get("start", 0), a.get("end", None)
    return t.tensor(dims[start:end], dtype=t.int64)


@op("Size")
def _size(t, F, a, x):
    return t.tensor(x[0].numel(), dtype=t.int64)


@op("Gather")
def _gather(t, F, a, x):
    axis = a.get("axis", 0)
    axis = axis if axis >= 0 else x[0].dim() + axis
    idx = x[1].long()
    idx = t.where(idx < 0, idx + x[0].shape[axis], idx)
    picked = t.index_select(x[0], axis, idx.reshape(-1))
    return picked.reshape(tuple(x[0].shape[:axis]) + tuple(idx.shape) + tuple(x[0].shape[axis + 1:]))


@op("Range")
def _range(t, F, a, x):
    return t.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype)


@op("Expand")
def _expand(t, F, a, x):
    shape = _ints(x[1])
    full = t.broadcast_shapes(tuple(x[0].shape), tuple(shape))
    return x[0].expand(full)


@op("Tile")
def _tile(t, F, a, x):
    return x[0].repeat(*_ints(x[1]))


@op("ConstantOfShape")
def _constant_of_shape(t, F, a, x):
    value = a.get("value")
    fill = to_tensor(np.zeros(1, np.float32) if value is None else value).reshape(-1)
    return t.full(tuple(_ints(x[0])), fill[0].item(), dtype=fill.dtype)


@op("Constant")
def _constant(t, F, a, x):
    if "value" in a.values:
        return to_tensor(a.get("value"))
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                       ("value_ints", np.int64)):
        if key in a.values:
            return to_tensor(np.array(a.get(key), dtype=dtype))
    raise UnsupportedOpError("Constant", f"attribute {sorted(a.values)}")


@op("Slice")
def _slice(t, F, a, x):
    data = x[0]
    starts, ends = _ints(x[1]), _ints(x[2])
    axes = _ints(x[3]) if len(x) > 3 and x[3] is not None else list(range(len(starts)))
    steps = _ints(x[4]) if len(x) > 4 and x[4] is not None else [1] * len(starts)
    index = [slice(None)] * data.dim()
    flips = []
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = ax % data.dim()
        size = data.shape[ax]
        if st > 0:
            s = max(0, min(size, s + size if s < 0 else s))
            e = max(0, min(size, e + size if e < 0 else e))
            index[ax] = slice(s, e, st)
        else:  # a negative step: the positive slice of the reversed axis
            s = max(-1, min(size - 1, s + size if s < 0 else s))
            e = max(-1, min(size - 1, e + size if e < 0 else e))
            index[ax] = slice(size - 1 - s, size - 1 - e, -st)
            flips.append(ax)
    out = data.flip(flips) if flips else data
    return out[tuple(index)]


@op("Pad")
def _pad(t, F, a, x):
    mode = a.get("mode", "constant")
    pads = _ints(x[1]) if len(x) > 1 and x[1] is not None else list(a.get("pads"))
    value = x[2].item() if len(x) > 2 and x[2] is not None and x[2].numel() else a.get("value", 0.0)
    if len(x) > 3 and x[3] is not None:
        raise UnsupportedOpError("Pad", "axes input")
    dims = len(pads) // 2
    torch_pads = []
    for i in reversed(range(dims)):
        torch_pads += [pads[i], pads[dims + i]]
    if mode == "constant":
        return F.pad(x[0], torch_pads, value=value)
    return F.pad(x[0], torch_pads, mode={"reflect": "reflect", "edge": "replicate"}[mode])
