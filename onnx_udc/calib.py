"""Calibration inputs: what the model is run on to measure how its outputs react to noise.

A calibration set is a list of feed dicts (input name -> array), each one batch:

    .npz file  --load_npz-->      one array per model input, samples along axis 0
    iterable of feed dicts  -->   taken as they come (a Python data reader)
    nothing   --synthesize-->     random inputs from the model's input specification

Real in-domain inputs are strongly preferred: synthetic inputs only exercise the
network the way noise does. ``CalibrationSet.synthetic`` says which one was used so
that callers can say so loudly.
"""

from __future__ import annotations

import itertools
import math
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from .errors import ConfigError

Feeds = dict[str, np.ndarray]

DEFAULT_SAMPLES = 64
SYNTHETIC_SEQUENCE = 32  # length given to unnamed dynamic sequence axes of synthetic inputs


@dataclass
class CalibrationSet:
    batches: list[Feeds]
    synthetic: bool
    source: str  # for messages: the file, "data reader" or "synthesized"

    @property
    def samples(self) -> int:
        return sum(_batch_size(b) for b in self.batches)


def _batch_size(feeds: Feeds) -> int:
    first = next(iter(feeds.values()), None)
    return int(first.shape[0]) if first is not None and first.ndim else 1


def model_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Graph inputs that are not initializers (the ones a caller must feed)."""
    inits = {i.name for i in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def _check_feeds(feeds: Mapping[str, object], required: list[onnx.ValueInfoProto], where: str) -> Feeds:
    if not isinstance(feeds, Mapping):
        raise ConfigError(f"{where}: a calibration batch must be a dict of input name -> array, got {type(feeds).__name__}")
    missing = [v.name for v in required if v.name not in feeds]
    if missing:
        raise ConfigError(f"{where}: calibration inputs lack model input(s) {missing}; it has {sorted(feeds)}")
    out: Feeds = {}
    for v in required:
        array = np.asarray(feeds[v.name])
        want = helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)
        if array.dtype != want:
            if not np.can_cast(array.dtype, want, casting="same_kind"):
                raise ConfigError(f"{where}: input {v.name!r} has dtype {array.dtype}, the model wants {np.dtype(want)}")
            array = array.astype(want)
        rank = len(v.type.tensor_type.shape.dim)
        if v.type.tensor_type.HasField("shape") and array.ndim != rank:
            raise ConfigError(f"{where}: input {v.name!r} has rank {array.ndim}, the model wants {rank}")
        out[v.name] = array
    return out


def load_npz(path: str | Path, model: onnx.ModelProto, limit: int = DEFAULT_SAMPLES, batch: int = 16) -> CalibrationSet:
    """One array per model input in an .npz, samples along axis 0; cut into batches."""
    path = Path(path)
    required = model_inputs(model)
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"calibration file {path} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"calibration file {path} is not a readable .npz: {exc}") from None
    with archive:
        arrays = _check_feeds({k: archive[k] for k in archive.files if k in {v.name for v in required}}, required, str(path))
    sizes = {name: a.shape[0] if a.ndim else 0 for name, a in arrays.items()}
    n = min(sizes.values()) if sizes else 0
    if n == 0 or len(set(sizes.values())) != 1:
        raise ConfigError(f"{path}: every input needs the same number of samples along axis 0 (got {sizes})")
    n = min(n, limit)
    batches = [{k: a[i : min(i + batch, n)] for k, a in arrays.items()} for i in range(0, n, batch)]
    return CalibrationSet(batches, synthetic=False, source=str(path))


def from_reader(reader: Iterable[Mapping[str, object]], model: onnx.ModelProto, limit: int = DEFAULT_SAMPLES) -> CalibrationSet:
    """Feed dicts from a Python iterable (a data reader), up to ``limit`` samples."""
    required = model_inputs(model)
    batches: list[Feeds] = []
    taken = 0
    for i, feeds in enumerate(itertools.islice(reader, 100_000)):
        batch = _check_feeds(feeds, required, f"calibration batch {i}")
        batches.append(batch)
        taken += _batch_size(batch)
        if taken >= limit:
            break
    if not batches:
        raise ConfigError("the calibration data reader yielded no batches")
    return CalibrationSet(batches, synthetic=False, source="data reader")


def _vocabulary(model: onnx.ModelProto, input_name: str) -> int | None:
    """Rows of the table a Gather reads with this input (token ids), if any."""
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Gather" and len(node.input) > 1 and node.input[1] == input_name and node.input[0] in inits:
            dims = inits[node.input[0]].dims
            return int(dims[0]) if dims else None
    return None


def synthesize(model: onnx.ModelProto, samples: int = DEFAULT_SAMPLES, batch: int = 16, seed: int = 0) -> CalibrationSet:
    """Inputs made from the model's input specification.

    float: standard normal; integer ids feeding a Gather: uniform over the table's rows;
    inputs named like masks: ones; other integers: zeros. Dynamic axes: the first is the
    batch axis, others get ``SYNTHETIC_SEQUENCE``.
    """
    rng = np.random.default_rng(seed)
    required = model_inputs(model)
    if not required:
        raise ConfigError("the model has no inputs to synthesize calibration data for")
    batches: list[Feeds] = []
    for start in range(0, samples, batch):
        n = min(batch, samples - start)
        feeds: Feeds = {}
        for v in required:
            t = v.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim]
            shape = [n if k == 0 and d is None else (d or SYNTHETIC_SEQUENCE) for k, d in enumerate(dims)]
            if dims and dims[0] is not None and dims[0] != n:
                shape[0] = dims[0]  # fixed batch axis
            dtype = helper.tensor_dtype_to_np_dtype(t.elem_type)
            if t.elem_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE):
                feeds[v.name] = rng.standard_normal(shape).astype(dtype)
            elif t.elem_type == TensorProto.BOOL or "mask" in v.name.lower():
                feeds[v.name] = np.ones(shape, dtype=dtype)
            elif (vocab := _vocabulary(model, v.name)) is not None:
                feeds[v.name] = rng.integers(0, vocab, size=shape).astype(dtype)
            else:
                feeds[v.name] = np.zeros(shape, dtype=dtype)
        batches.append(feeds)
    return CalibrationSet(batches, synthetic=True, source="synthesized from the input specification")


def calibration_set(
    model: onnx.ModelProto,
    source: str | Path | Iterable[Mapping[str, object]] | CalibrationSet | None,
    samples: int = DEFAULT_SAMPLES,
) -> CalibrationSet:
    """Any accepted source -> a CalibrationSet of at most ``samples`` samples."""
    if samples < 1 or not math.isfinite(samples):
        raise ConfigError(f"calibration samples must be at least 1, got {samples}")
    if isinstance(source, CalibrationSet):
        return source
    if source is None:
        return synthesize(model, samples)
    if isinstance(source, (str, Path)):
        if Path(source).suffix != ".npz":
            raise ConfigError(f"calibration file {source}: only .npz (one array per model input) is supported")
        return load_npz(source, model, samples)
    return from_reader(source, model, samples)
