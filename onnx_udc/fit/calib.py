"""Calibration inputs: what the model is run on to measure how its outputs react to noise.

A calibration set is a list of feed dicts (input name -> array), each one batch:

    .npz file  --load_npz-->      one array per model input, samples along axis 0
    image folder --load_images--> decoded, resized, normalised by a declared ImagePreprocess
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

from ..errors import ConfigError

Feeds = dict[str, np.ndarray]

DEFAULT_SAMPLES = 256
SYNTHETIC_SEQUENCE = 32  # length given to unnamed dynamic sequence axes of synthetic inputs


@dataclass
class CalibrationSet:
    batches: list[Feeds]
    synthetic: bool
    source: str  # for messages: the file, "data reader" or "synthesized"
    whole_feeds: bool = False  # each batch is one complete feed (a step of a stateful model): never cut one

    @property
    def samples(self) -> int:
        return sum(batch_rows(b) for b in self.batches)


def spread(n: int, k: int) -> np.ndarray:
    """Up to ``k`` indices of [0, n) spread evenly over it, first and last included (int64, sorted)."""
    return np.unique(np.linspace(0, n - 1, max(1, k)).round().astype(np.int64))


def batch_rows(feeds: Mapping[str, np.ndarray]) -> int:
    """Samples in a batch: the leading axis of its first input that has one (else 1)."""
    return next((int(v.shape[0]) for v in feeds.values() if np.ndim(v) >= 1), 1)


def first_samples(batches: list[Feeds], n: int, whole: bool = False) -> list[Feeds]:
    """The first ``n`` samples of ``batches`` (the last batch cut if needed; ``whole``: whole
    batches only, at least one: feeds of a stateful model cannot be cut)."""
    out, left = [], max(1, n)
    for b in batches:
        if left <= 0:
            break
        rows = batch_rows(b)
        if whole:
            out.append(b)
            left -= rows
            continue
        out.append(b if rows <= left else {k: (v[:left] if np.ndim(v) >= 1 and v.shape[0] == rows else v) for k, v in b.items()})
        left -= rows
    return out


HOLDOUT_FRACTION = 0.25  # of the calibration samples, never used to fit: the final check runs on them


def split_holdout(calib: CalibrationSet, fraction: float = HOLDOUT_FRACTION,
                  model: onnx.ModelProto | None = None, held: int | None = None) -> tuple[CalibrationSet, CalibrationSet]:
    """(fit, held-out): every k-th sample (k = 1 / ``fraction``; at least one) is held out, so
    the file's order cannot bias the check. ``held``: that many samples held out instead
    (the default calibration's count, pipeline.compress.default_calibration), the fit
    samples spread evenly over the set and the rest held out (whole feeds: that many
    samples' worth of feeds, spread).

    Everything fitted (sensitivities, the allocation's search, PQ, codeword tables) sees the
    fit part only; the fidelity a compression reports is measured on the held-out part.
    Whole feeds (stateful calibration, or a ``model`` with a fixed batch dimension) are held
    out whole: every k-th feed."""
    every = max(2, round(1.0 / fraction))
    if calib.whole_feeds or (model is not None and _fixed_batch_size(model)):
        nb = len(calib.batches)
        if nb < 2:
            raise ConfigError("whole feeds (a fixed batch size, or steps of a stateful model): at least 2 are "
                          f"needed (one to fit, one held out), got {calib.samples} sample(s) in {nb} feed(s)")
        held_at = {i for i in range(nb) if i % every == every - 1} or {nb - 1}
        if held is not None:
            rows = calib.samples / nb
            keep = nb - min(nb - 1, max(1, math.ceil(held / max(rows, 1e-9))))
            held_at = set(range(nb)) - set(_spread_fit(nb, keep).tolist())
        held = [b for i, b in enumerate(calib.batches) if i in held_at]
        kept = [b for i, b in enumerate(calib.batches) if i not in held_at]
        return (CalibrationSet(kept, calib.synthetic, calib.source, calib.whole_feeds),
                CalibrationSet(held, calib.synthetic, calib.source, calib.whole_feeds))
    n = calib.samples
    if n < 2:
        raise ConfigError(f"at least 2 calibration samples are needed (one to fit, one held out), got {n}")
    held_idx = np.arange(every - 1, n, every) if n >= every else np.array([n - 1])
    if held is not None:
        held_idx = np.setdiff1d(np.arange(n), _spread_fit(n, n - min(n - 1, max(1, held))))
    fit_idx = np.setdiff1d(np.arange(n), held_idx)
    fit = CalibrationSet(_rebatch(calib.batches, fit_idx), calib.synthetic, calib.source)
    holdout = CalibrationSet(_rebatch(calib.batches, held_idx), calib.synthetic, calib.source)
    return fit, holdout


def _spread_fit(n: int, k: int) -> np.ndarray:
    """``k`` distinct indices of [0, n) spread evenly (k <= n): the fit part of a split whose
    held-out part is the rest."""
    return np.floor(np.arange(k) * (n / max(k, 1))).astype(np.int64)


def cut(calib: CalibrationSet, samples: int) -> CalibrationSet:
    """``samples`` samples of ``calib`` spread evenly over it (whole feeds: whole batches)."""
    if samples >= calib.samples:
        return calib
    if calib.whole_feeds:
        nb = len(calib.batches)
        keep = spread(nb, max(1, round(nb * samples / calib.samples)))
        return CalibrationSet([calib.batches[i] for i in keep], calib.synthetic, calib.source, True)
    index = _spread_fit(calib.samples, samples)
    return CalibrationSet(_rebatch(calib.batches, index), calib.synthetic, calib.source)


def _rebatch(batches: list[Feeds], index: np.ndarray) -> list[Feeds]:
    """The samples ``index`` (sorted, over all batches) of ``batches``: each source batch keeps
    its own selected samples as one batch (batches may differ in shape: padded sequences)."""
    out, start = [], 0
    for b in batches:
        rows = batch_rows(b)
        local = index[(index >= start) & (index < start + rows)] - start
        if local.size:
            out.append({k: (v[local] if np.ndim(v) >= 1 and v.shape[0] == rows else v) for k, v in b.items()})
        start += rows
    return out


def _fixed_batch_size(model: onnx.ModelProto) -> int:
    """The static leading dimension (above 1) of the model's inputs, a batch the feeds cannot
    change; 0 when the batch is free."""
    for v in model_inputs(model):
        dims = v.type.tensor_type.shape.dim
        if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 1:
            return int(dims[0].dim_value)
    return 0


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
        raw = {k: archive[k] for k in archive.files if k in {v.name for v in required}}
        missing = [v.name for v in required if v.name not in raw]
        if missing:
            raise ConfigError(f"{path}: calibration inputs lack model input(s) {missing}; the file holds "
                              f"{sorted(archive.files)}")
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in required if v.type.tensor_type.HasField("shape")}
    stacked = [k for k, a in raw.items() if k in ranks and a.ndim == ranks[k] + 1]
    if stacked:  # one more axis than the model's inputs: a sequence of whole feeds (stateful models)
        return _feeds_file(path, raw, required, stacked, limit)
    arrays = _check_feeds(raw, required, str(path))
    n, varying, constant = _sample_axis(arrays)
    if n == 0:
        raise ConfigError(f"{path}: no input has samples along axis 0 (got shapes "
                          f"{ {k: a.shape for k, a in arrays.items()} })")
    if n > limit:  # samples spread over the whole file, not its first ones (files are often sorted by class)
        pick = spread(n, limit)
        arrays = {k: (a[pick] if k in varying else a) for k, a in arrays.items()}
    n = min(n, limit)
    fixed = _fixed_batch_size(model)
    if fixed:  # the model takes exactly this many samples per run: whole batches only
        batch, n = fixed, n // fixed * fixed
        if n == 0:
            raise ConfigError(f"{path}: the model's inputs have a fixed batch of {fixed}; the file has fewer samples")
    # sample-bearing inputs first (batch_rows reads the first), then the constant ones, whole
    batches = [{**{k: arrays[k][i : min(i + batch, n)] for k in varying}, **{k: arrays[k] for k in constant}}
               for i in range(0, n, batch)]
    source = str(path) + (f" (the same for every sample: {', '.join(constant)})" if constant else "")
    return CalibrationSet(batches, synthetic=False, source=source)


def _feeds_file(path: Path, raw: Mapping[str, np.ndarray], required: list[onnx.ValueInfoProto], stacked: list[str],
                limit: int) -> CalibrationSet:
    """An .npz whose arrays have one axis more than the model's inputs: entry i of axis 0 of
    each such array is input i of one complete feed (a chunk of a stateful model with the
    state recorded for it); arrays of the input's own rank are the same in every feed."""
    steps = {k: raw[k].shape[0] for k in stacked}
    if len(set(steps.values())) != 1:
        raise ConfigError(f"{path}: the stacked inputs need the same number of feeds along axis 0 (got {steps})")
    count = next(iter(steps.values()))
    batches, taken = [], 0
    for i in range(count):
        feeds = _check_feeds({k: (a[i] if k in stacked else a) for k, a in raw.items()}, required, f"{path} feed {i}")
        batches.append(feeds)
        taken += batch_rows(feeds)
        if taken >= limit:
            break
    if not batches:
        raise ConfigError(f"{path}: no feeds")
    return CalibrationSet(batches, synthetic=False, source=f"{path} ({len(batches)} whole feeds)", whole_feeds=True)


def _sample_axis(arrays: Mapping[str, np.ndarray]) -> tuple[int, list[str], list[str]]:
    """(samples N, inputs with N samples along axis 0, inputs the same for every sample).

    N is the leading size most inputs share (the largest on a tie); an input without that
    leading size (a scalar such as a sample rate, a recurrent state [2, B, H]) is fed whole
    to every batch."""
    leading = [a.shape[0] for a in arrays.values() if a.ndim >= 1]
    if not leading:
        return 0, [], list(arrays)
    counts = {size: leading.count(size) for size in set(leading)}
    n = max(counts, key=lambda size: (counts[size], size))
    varying = [k for k, a in arrays.items() if a.ndim >= 1 and a.shape[0] == n]
    return n, varying, [k for k in arrays if k not in varying]


# ---- a folder of images with a declared preprocessing ------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff")
PREPROCESS_FILE = "preprocess.json"


@dataclass(frozen=True)
class ImagePreprocess:
    """How an image file becomes one sample of a model input:

        file --PIL convert(mode)--> resize to (height, width) (bilinear) --> float32 [H, W, C]
             --* scale, - mean, / std (per channel)--> NCHW [C, H, W] or NHWC [H, W, C]

    size: (height, width); None takes the model input's static dimensions.
    input: the model input fed (None: the model's only input).
    Declared in the API, or as ``preprocess.json`` in the image folder (the same keys).
    """

    size: tuple[int, int] | None = None
    layout: str = "NCHW"
    mode: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    input: str | None = None

    def __post_init__(self) -> None:
        if self.layout not in ("NCHW", "NHWC"):
            raise ConfigError(f"image layout must be NCHW or NHWC, got {self.layout!r}")
        if self.mode not in ("RGB", "L"):
            raise ConfigError(f"image mode must be RGB or L, got {self.mode!r}")
        if not self.std or any(s == 0 for s in self.std):
            raise ConfigError("image std must be non-zero")

    @classmethod
    def from_json(cls, path: Path) -> "ImagePreprocess":
        import json

        try:
            spec = json.loads(path.read_text())
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"{path}: not a valid image preprocessing declaration: {exc}") from None


def _image_input(model: onnx.ModelProto, prep: ImagePreprocess) -> tuple[onnx.ValueInfoProto, tuple[int, int]]:
    required = model_inputs(model)
    chosen = [v for v in required if prep.input in (None, v.name)]
    if len(chosen) != 1 or len(required) != 1:
        raise ConfigError(f"an image folder feeds a model with one input; the model has {[v.name for v in required]}")
    v = chosen[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise ConfigError(f"input {v.name!r} has rank {len(dims)}; an image input has rank 4")
    spatial = dims[2:4] if prep.layout == "NCHW" else dims[1:3]
    size = prep.size or tuple(spatial)
    if None in size or not size[0] or not size[1]:
        raise ConfigError(f"input {v.name!r} has dynamic spatial size: declare the image size")
    return v, (int(size[0]), int(size[1]))


def load_image(path: Path, prep: ImagePreprocess, size: tuple[int, int]) -> np.ndarray:
    """One image file -> float32 [C, H, W] (NCHW) or [H, W, C] (NHWC)."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError("calibration from an image folder needs Pillow: pip install 'onnx-udc[images]'") from None

    try:
        with Image.open(path) as img:
            pixels = np.asarray(img.convert(prep.mode).resize((size[1], size[0]), Image.BILINEAR), dtype=np.float32)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the image: {exc}") from None
    pixels = pixels.reshape(size[0], size[1], -1)  # [H, W, C]
    x = (pixels * np.float32(prep.scale) - np.asarray(prep.mean, np.float32)) / np.asarray(prep.std, np.float32)
    return x if prep.layout == "NHWC" else x.transpose(2, 0, 1)


def load_images(
    folder: str | Path, model: onnx.ModelProto, prep: ImagePreprocess | None = None,
    limit: int = DEFAULT_SAMPLES, batch: int = 16,
) -> CalibrationSet:
    """Image files of a folder (sorted by name, up to ``limit``) -> batches of one model input."""
    folder = Path(folder)
    if prep is None:
        declared = folder / PREPROCESS_FILE
        prep = ImagePreprocess.from_json(declared) if declared.exists() else ImagePreprocess()
    v, size = _image_input(model, prep)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:limit]
    if not files:
        raise ConfigError(f"calibration folder {folder} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    dtype = helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)
    batches = [{v.name: np.stack([load_image(p, prep, size) for p in files[i : i + batch]]).astype(dtype)}
               for i in range(0, len(files), batch)]
    return CalibrationSet(batches, synthetic=False, source=f"{folder} ({len(files)} images)")


def from_reader(reader: Iterable[Mapping[str, object]], model: onnx.ModelProto, limit: int = DEFAULT_SAMPLES) -> CalibrationSet:
    """Feed dicts from a Python iterable (a data reader), up to ``limit`` samples."""
    required = model_inputs(model)
    batches: list[Feeds] = []
    taken = 0
    for i, feeds in enumerate(itertools.islice(reader, 100_000)):
        batch = _check_feeds(feeds, required, f"calibration batch {i}")
        batches.append(batch)
        taken += batch_rows(batch)
        if taken >= limit:
            break
    if not batches:
        raise ConfigError("the calibration data reader yielded no batches")
    # several feeds: each may be one step of a stateful model (its state recorded in it): kept whole
    return CalibrationSet(batches, synthetic=False, source="data reader", whole_feeds=len(batches) >= 4)


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
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        return load_images(source, model, limit=samples)
    if isinstance(source, (str, Path)):
        if Path(source).suffix != ".npz":
            raise ConfigError(f"calibration file {source}: only .npz (one array per model input) or a folder of images is supported")
        return load_npz(source, model, samples)
    return from_reader(source, model, samples)
