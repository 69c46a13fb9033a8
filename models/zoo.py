"""The evaluation zoo: real models with real inputs and a fidelity metric each.

Every entry is a ``ZooModel``. Building one (exporting to ONNX, preparing inputs) may
need optional dependencies (``pip install -e '.[zoo]'``); a missing one raises
``ZooUnavailable`` with a one-line message naming what to install, never a traceback.
Exported files are cached under ``models/cache/<name>/`` (ignored by git).

    model = get("fmnist")
    path = model.onnx_path()            # builds once, then cached
    batches = model.feeds()             # list of {input name: array}
    metrics = model.fidelity(reference_outputs, outputs)
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CACHE = Path(os.environ.get("ONNX_UDC_ZOO_CACHE", Path(__file__).resolve().parent / "cache"))

Outputs = list[list[np.ndarray]]  # per batch, per model output


class ZooUnavailable(Exception):
    """An optional dependency or data file of a zoo model is missing."""


@dataclass(frozen=True)
class FidelityTarget:
    """What the zoo benchmark asks of a compressed model, measured on ``feeds()``:
    ``metric >= threshold``. ``allocations`` are the rate-allocation targets tried
    for it on the calibration inputs, as (kind, value) of ``onnx_udc.allocate.Target``."""

    metric: str
    threshold: float
    allocations: tuple[tuple[str, float], ...]
    # the target a user would give the default command for this zoo metric (kind, value of
    # allocate.Target, e.g. ("agreement", 0.97) for "accuracy within a point"); None where the
    # default target chosen from the outputs already is at least as strict as the zoo's
    stated: tuple[str, float] | None = None


class ZooModel(abc.ABC):
    name: str  # registry key, also the cache folder
    title: str  # for tables and plots
    primary: str  # key of the headline fidelity metric (higher is better)
    target: FidelityTarget | None = None

    @abc.abstractmethod
    def onnx_path(self) -> Path:
        """The fp32 ONNX model; built and cached on first use."""

    @abc.abstractmethod
    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        """Real evaluation inputs, in batches; ``limit`` caps the number of samples."""

    @abc.abstractmethod
    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        """Metrics of ``outputs`` against the original model's ``reference`` on ``feeds()``."""

    def calibration(self, samples: int) -> list[dict[str, np.ndarray]]:
        """Unlabelled calibration inputs for rate allocation, in batches.

        Default: the last ``samples`` samples of ``feeds()`` (a small overlap with the
        evaluation set, said in RESULTS.md); entries with a generator of inputs override it
        with inputs the evaluation never sees.
        """
        batches = self.feeds()
        out, left = [], samples
        for feed in reversed(batches):
            if left <= 0:
                break
            n = len(next(iter(feed.values())))
            take = min(n, left)
            out.append({k: v[n - take :] for k, v in feed.items()})
            left -= take
        return out[::-1]

    def run(self, session, feeds: list[dict[str, np.ndarray]]) -> Outputs:
        """Outputs of ``session`` (an onnxruntime-like session) on ``feeds``, as the benchmark
        measures them. Default: every feed on its own; a stateful entry (a recurrent model run
        chunk by chunk) overrides it to carry its state from one feed to the next."""
        return [session.run(None, feed) for feed in feeds]

    def cache_dir(self) -> Path:
        path = CACHE / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path


class SplitArrays(ZooModel):
    """An entry whose ``inputs()`` holds one model input's evaluation and calibration arrays
    under ``key`` ("{part}" is "eval" or "calib"), fed in batches of ``batch``."""

    input_name: str
    key: str = "{part}_x"
    batch: int = 16

    @abc.abstractmethod
    def inputs(self) -> dict[str, np.ndarray]:
        """The cached arrays (evaluation and calibration)."""

    def _batches(self, part: str, limit: int | None) -> list[dict[str, np.ndarray]]:
        x = self.inputs()[self.key.format(part=part)]
        out, left = [], len(x) if limit is None else max(int(limit), 0)
        for i in range(0, len(x), self.batch):  # at most ``limit`` samples over the batches
            if left <= 0:
                break
            out.append({self.input_name: x[i : i + min(self.batch, left)]})
            left -= len(out[-1][self.input_name])
        return out

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        return self._batches("eval", limit)

    def calibration(self, samples: int) -> list[dict[str, np.ndarray]]:
        return self._batches("calib", samples)


_REGISTRY: dict[str, Callable[[], ZooModel]] = {}


def register(name: str) -> Callable:
    def wrap(factory: Callable[[], ZooModel]) -> Callable[[], ZooModel]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def names() -> list[str]:
    _load_entries()
    return list(_REGISTRY)


def get(name: str) -> ZooModel:
    _load_entries()
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ZooUnavailable(f"unknown zoo model {name!r}; choose one of {', '.join(_REGISTRY)}") from None


def require(module: str, package: str | None = None):
    """Import an optional dependency or raise ZooUnavailable naming the package."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ZooUnavailable(
            f"{module} is not installed: pip install -e '.[zoo]' (or pip install {package or module})"
        ) from None


# ---- shared metrics -------------------------------------------------------------

def logits_metrics(reference: Outputs, outputs: Outputs, labels: np.ndarray | None = None) -> dict[str, float]:
    """Classification fidelity from the first output (logits [N, classes])."""
    ref = np.concatenate([b[0] for b in reference]).astype(np.float64)
    out = np.concatenate([b[0] for b in outputs]).astype(np.float64)
    metrics = {
        "top1_agreement": float(np.mean(ref.argmax(1) == out.argmax(1))),
        "logit_sqnr_db": _sqnr(ref, out),
        "kl": float(np.mean(np.sum(_softmax(ref) * (_log_softmax(ref) - _log_softmax(out)), axis=1))),
    }
    if labels is not None:
        metrics["accuracy"] = float(np.mean(out.argmax(1) == labels[: len(out)]))
    return metrics


def _sqnr(ref: np.ndarray, out: np.ndarray) -> float:
    noise = float(np.sum((out - ref) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(ref**2)) / noise)


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def _softmax(x: np.ndarray) -> np.ndarray:
    return np.exp(_log_softmax(x))


def _load_entries() -> None:
    from . import fashion_mnist  # noqa: F401

    for optional in ("efficientnet_lite0", "minilm", "shipped", "ocr_cls", "filetype_magika", "vad_silero", "det_nudenet",
                     "minilm_fp16", "efficientnet_lite0_qdq"):
        try:
            __import__(f"{__package__}.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{optional}":
                raise
