"""Run an original and a compressed model on the same inputs and compare the outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import ConfigError, ModelError
from ..codec import sqnr_db

_NUMPY_OF_ORT = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


@dataclass(frozen=True)
class OutputComparison:
    name: str
    max_abs_error: float
    sqnr_db: float
    top1_agreement: float | None  # None unless the output reads as class scores [N, C]
    cosine: float | None = None  # mean cosine per sample, for float outputs with a feature axis


def random_feeds(session: ort.InferenceSession, batch: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs drawn from the session's input signature; symbolic dims become ``batch``/1."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for i, arg in enumerate(session.get_inputs()):
        shape = [d if isinstance(d, int) and d > 0 else (batch if k == 0 else 1) for k, d in enumerate(arg.shape)]
        dtype = _NUMPY_OF_ORT.get(arg.type)
        if dtype is None:
            raise ConfigError(f"input {arg.name} has type {arg.type}; pass --inputs with real data")
        if np.issubdtype(dtype, np.floating):
            feeds[arg.name] = rng.standard_normal(shape).astype(dtype)
        elif dtype is np.bool_:
            feeds[arg.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            feeds[arg.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds


def load_feeds(path: str | Path, session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """Feeds from an .npz: keys are input names (a single input may use any key)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise ModelError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable .npz file ({exc})") from None
    names = [arg.name for arg in session.get_inputs()]
    if len(names) == 1 and len(arrays) == 1:
        return {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ConfigError(f"{path}: no array for input(s) {', '.join(missing)}; it has {', '.join(arrays)}")
    return {n: arrays[n] for n in names}


def compare(name: str, reference: np.ndarray, output: np.ndarray) -> OutputComparison:
    ref = np.asarray(reference, dtype=np.float64)
    out = np.asarray(output, dtype=np.float64)
    err = out - ref
    sqnr = sqnr_db(ref, out)
    top1 = cosine = None
    if np.issubdtype(np.asarray(reference).dtype, np.floating) and ref.ndim >= 2 and ref.shape[-1] > 1:
        if ref.ndim == 2:  # [N, C]: class scores (a grid, a sequence or a state has no single top-1)
            top1 = float(np.mean(np.argmax(ref, axis=-1) == np.argmax(out, axis=-1)))
        a, b = ref.reshape(ref.shape[0], -1), out.reshape(out.shape[0], -1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cosine = float(np.mean(np.where(den > 0, np.sum(a * b, axis=1) / np.maximum(den, 1e-300), 1.0)))
    max_abs = float(np.max(np.abs(err))) if err.size else 0.0
    return OutputComparison(name, max_abs, sqnr, top1, cosine)


def compare_sessions(
    original: ort.InferenceSession, compressed: ort.InferenceSession, feeds: dict[str, np.ndarray]
) -> list[OutputComparison]:
    names = [o.name for o in original.get_outputs()]
    ref = run_outputs(original, feeds, names)
    out = run_outputs(compressed, feeds, names)
    return [compare(n, r, o) for n, r, o in zip(names, ref, out)]


def run_outputs(session: ort.InferenceSession, feeds: dict[str, np.ndarray], names: list[str] | None = None
                ) -> list[np.ndarray]:
    """``session``'s outputs (``names``, default all) on ``feeds``; ModelError naming the node
    where onnxruntime fails."""
    names = names or [o.name for o in session.get_outputs()]
    try:
        return session.run(names, feeds)
    except Exception as exc:  # onnxruntime's own exception types: one line naming the node
        from ..fit.probe import ort_failure

        raise ModelError(f"onnxruntime failed on the verification inputs: {ort_failure(exc)} (check --inputs: one "
                         "array per model input, with the shapes and types the model declares)") from None


def compare_files(original, compressed, feeds_for, *, fast: bool = False, session=None
                  ) -> tuple[list[OutputComparison], dict[str, np.ndarray]]:
    """Outputs of the model files ``original`` and ``compressed`` on the same feeds, one
    session at a time (the original's is closed before the compressed one is made: the
    peak memory is the larger of the two, not their sum). ``feeds_for(session)`` makes the
    feeds from the original's session; ``session`` is the session class
    (load.session.InferenceSession); ``fast``: the compressed model through the fast
    loader instead of the custom op. Returns the comparisons and the feeds."""
    import gc

    ref_session = session(original, fast=True)
    feeds = feeds_for(ref_session)
    names = [o.name for o in ref_session.get_outputs()]
    ref = run_outputs(ref_session, feeds, names)
    del ref_session
    gc.collect()
    out_session = session(compressed, fast=fast)
    out = run_outputs(out_session, feeds, names)
    del out_session
    return [compare(n, r, o) for n, r, o in zip(names, ref, out)], feeds
