"""Fidelity metrics of a compressed model's outputs against the original's.

Each metric is a small registered strategy with three pure functions:

    measure(reference, outputs)     -> the metric (higher is better)
    distortion(reference, outputs)  -> relative output noise power D = sum|y - y0|^2 / sum|y0|^2
                                       over the outputs the metric looks at
    budget(target, reference)       -> the D predicted to just meet ``target``

``reference`` and ``outputs`` are per batch, per model output (``Outputs``). Rate
allocation models D as additive over tensors (dithered quantization adds noise of known
power), solves for the budget, then checks the real metric.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..errors import ConfigError

Outputs = list[list[np.ndarray]]  # per batch, per model output


def _float_outputs(outputs: Outputs, first_only: bool) -> list[np.ndarray]:
    """Every float output of every batch, as float64 arrays."""
    picked = []
    for batch in outputs:
        for k, y in enumerate(batch[:1] if first_only else batch):
            y = np.asarray(y)
            if np.issubdtype(y.dtype, np.floating):
                picked.append(y.astype(np.float64))
    return picked


def relative_noise(reference: Outputs, outputs: Outputs, first_only: bool = False) -> float:
    """sum |y - y0|^2 / sum |y0|^2 over float outputs; inf when the reference is all zero."""
    ref = _float_outputs(reference, first_only)
    out = _float_outputs(outputs, first_only)
    if not ref:
        raise ConfigError("the model has no float outputs to measure fidelity on")
    signal = sum(float(np.sum(r * r)) for r in ref)
    noise = sum(float(np.sum(np.nan_to_num(o - r, nan=1e30, posinf=1e30, neginf=1e30) ** 2)) for r, o in zip(ref, out))
    return noise / signal if signal > 0 else math.inf


def _per_sample(outputs: Outputs) -> np.ndarray:
    """First output of every batch -> [samples, features] float64."""
    rows = []
    for batch in outputs:
        y = np.asarray(batch[0], dtype=np.float64)
        rows.append(y.reshape(y.shape[0], -1) if y.ndim > 1 else y.reshape(1, -1))
    return np.concatenate(rows, axis=0)


class Metric(ABC):
    name: ClassVar[str]
    unit: ClassVar[str]
    first_only: ClassVar[bool] = True

    @abstractmethod
    def measure(self, reference: Outputs, outputs: Outputs) -> float: ...

    @abstractmethod
    def budget(self, target: float, reference: Outputs) -> float: ...

    def check_target(self, target: float) -> None:
        pass

    def deficit(self, value: float) -> float:
        """A quantity roughly proportional to the output noise power at small noise
        (used to step the Lagrange multiplier): 1 - value for similarity metrics."""
        return max(1.0 - value, 1e-12)

    def from_deficit(self, deficit: float) -> float:
        """The metric value whose deficit is ``deficit`` (the inverse of ``deficit``)."""
        return 1.0 - deficit

    def tightened(self, target: float, measured: float, goal: float, margin: float = 0.8) -> float:
        """A stricter internal target after a miss: the deficit allowed scaled by how far the
        held-out value fell short (``goal`` is the user's target, ``measured`` what the last
        attempt reached, ``target`` the internal target it used)."""
        ratio = self.deficit(goal) / max(self.deficit(measured), 1e-300)
        return self.from_deficit(self.deficit(target) * min(ratio, 1.0) * margin)

    def passes(self, value: float, target: float) -> bool:
        return value >= target

    def samples_to_confirm(self, target: float) -> int | None:
        """The held-out samples the final check needs before it can confirm ``target`` at 95%
        confidence from a count (agreement); None for metrics measured on the outputs'
        noise, which have no count to bound."""
        return None

    def describe(self, target: float) -> str:
        return f"{self.name} >= {self.format(target)}"

    def distortion(self, reference: Outputs, outputs: Outputs) -> float:
        return relative_noise(reference, outputs, self.first_only)

    def smooth(self, reference: Outputs, outputs: Outputs) -> float:
        """The value the allocation's search compares with the target: the metric itself,
        unless it is too coarse on a small calibration set (agreement)."""
        return self.measure(reference, outputs)

    def format(self, value: float) -> str:
        return f"{value:.4f}"


def samples_to_confirm(target: float, confidence: float = 0.95) -> int:
    """Held-out samples that, all agreeing, put the lower bound at ``target``: target^n = 1 - confidence."""
    import math

    return int(math.ceil(math.log(1.0 - confidence) / math.log(max(target, 1e-12)))) if target < 1 else 10**9


METRICS: dict[str, Metric] = {}


def register(cls: type[Metric]) -> type[Metric]:
    METRICS[cls.name] = cls()
    return cls


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"unknown fidelity metric {name!r}; choose one of {sorted(METRICS)}") from None


@register
class Sqnr(Metric):
    """Output signal-to-quantization-noise ratio in dB over all float outputs."""

    name = "sqnr"
    unit = "dB"
    first_only = False

    def measure(self, reference: Outputs, outputs: Outputs) -> float:
        d = self.distortion(reference, outputs)
        return math.inf if d == 0 else -10.0 * math.log10(d)

    def budget(self, target: float, reference: Outputs) -> float:
        return 10.0 ** (-target / 10.0)

    def deficit(self, value: float) -> float:
        return 10.0 ** (-min(value, 300.0) / 10.0)

    def from_deficit(self, deficit: float) -> float:
        return -10.0 * math.log10(max(deficit, 1e-300))

    def format(self, value: float) -> str:
        return f"{value:.2f} dB"


@register
class OutputSqnr(Sqnr):
    """The worst per-output SQNR in dB: each float output normalised by its own power, so a
    small output (class scores beside box coordinates, a state beside logits) counts as
    much as a large one. An output of rank >= 3 ([N, C, ...]: a detection grid, a feature
    map) is normalised per channel along axis 1 and its relative noise is the mean over
    channels: a YOLO head's class-score rows count as much as its box rows. Where axis 1
    changes size from batch to batch (a sequence's time axis) the output counts whole."""

    name = "output_sqnr"

    def distortion(self, reference: Outputs, outputs: Outputs) -> float:
        count = len(reference[0]) if reference else 0
        worst, seen = 0.0, False
        for k in range(count):
            ref = [np.asarray(b[k]) for b in reference]
            if not np.issubdtype(ref[0].dtype, np.floating):
                continue  # integer outputs (ids, counts) are not a fidelity signal
            seen = True
            out = [np.asarray(b[k]) for b in outputs]
            per_channel = ref[0].ndim >= 3 and len({r.shape[1] for r in ref}) == 1  # a fixed channel axis
            worst = max(worst, _channel_noise(ref, out) if per_channel else
                        relative_noise([[r] for r in ref], [[o] for o in out], True))
        if not seen:
            raise ConfigError("the model has no float outputs to measure fidelity on")
        return worst


def _channel_noise(ref: list[np.ndarray], out: list[np.ndarray]) -> float:
    """Mean over channels (axis 1) of the relative noise of each channel, over all batches."""
    channels = ref[0].shape[1]
    signal = np.zeros(channels)
    noise = np.zeros(channels)
    for r, o in zip(ref, out):
        r64 = np.moveaxis(r.astype(np.float64), 1, 0).reshape(channels, -1)  # [C, rest]
        e = np.nan_to_num(np.moveaxis(o.astype(np.float64), 1, 0).reshape(channels, -1) - r64,
                          nan=1e30, posinf=1e30, neginf=1e30)
        signal += np.sum(r64 * r64, axis=1)
        noise += np.sum(e * e, axis=1)
    live = signal > 0
    if not np.any(live):
        return math.inf if np.any(noise > 0) else 0.0
    return float(np.mean(noise[live] / signal[live]))


@register
class Cosine(Metric):
    """Mean cosine similarity of the first output, per sample (embeddings)."""

    name = "cosine"
    unit = ""

    def check_target(self, target: float) -> None:
        if not -1.0 < target < 1.0:
            raise ConfigError(f"--min-cosine must lie in (-1, 1), got {target}")

    def measure(self, reference: Outputs, outputs: Outputs) -> float:
        a, b = _per_sample(reference), _per_sample(outputs)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        cos = np.where(den > 0, np.sum(a * b, axis=1) / np.maximum(den, 1e-300), 0.0)
        return float(np.mean(np.nan_to_num(cos, nan=-1.0)))

    def budget(self, target: float, reference: Outputs) -> float:
        # Small noise orthogonal to y: cos ~ 1 - |e|^2 / (2 |y|^2).
        return 2.0 * (1.0 - target)


@register
class Agreement(Metric):
    """Top-1 agreement of the first output's argmax over its last axis (classifiers)."""

    name = "agreement"
    unit = ""

    def check_target(self, target: float) -> None:
        if not 0.0 < target <= 1.0:
            raise ConfigError(f"--min-agreement must lie in (0, 1], got {target}")

    def samples_to_confirm(self, target: float) -> int | None:
        """All of n agreeing puts the one-sided 95% lower bound at ``target``: target^n = 0.05
        (299 samples for 0.99, 149 for 0.98, 59 for 0.95)."""
        return samples_to_confirm(target)

    def measure(self, reference: Outputs, outputs: Outputs) -> float:
        same = [np.asarray(r[0]).argmax(-1) == np.asarray(o[0]).argmax(-1) for r, o in zip(reference, outputs)]
        return float(np.mean(np.concatenate([s.ravel() for s in same])))

    def smooth(self, reference: Outputs, outputs: Outputs) -> float:
        """Agreement predicted from the measured distortion by the margin model below: on
        64 samples the counted agreement moves in steps of 1.6 points and by chance. The
        model assumes logits (i.i.d. noise on every class score); for probabilities (rows in
        [0, 1] summing to 1, a softmax inside the model) the noise concentrates on the top
        classes and the model is far too hopeful (magika: 0.9996 expected, 0.94 real), so
        there the margin model is applied to the log-probabilities instead, with the noise
        of each sample's own top-2 margin measured (log_margin_agreement), and never above
        the count."""
        if _probabilities(reference):
            return min(self.measure(reference, outputs), log_margin_agreement(reference, outputs))
        return self.predict(self.distortion(reference, outputs), reference)

    def predict(self, d: float, reference: Outputs) -> float:
        logits = np.concatenate([np.asarray(b[0], np.float64).reshape(-1, np.asarray(b[0]).shape[-1]) for b in reference])
        top2 = np.sort(logits, axis=1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]  # [samples]
        sigma = math.sqrt(max(d, 1e-300) * float(np.mean(logits * logits)))  # per-logit noise
        return float(np.mean(1.0 - 0.5 * _erfc(margin / (2.0 * sigma))))  # the margin's noise is sigma*sqrt 2

    def budget(self, target: float, reference: Outputs) -> float:
        """The relative noise D at which i.i.d. Gaussian logit noise of power D*E[y^2]
        flips the top-1 of a fraction 1 - target of the samples: a sample with margin m
        between its two largest logits flips with probability Phi(-m / (sigma*sqrt 2))."""
        lo, hi = -12.0, 2.0  # log10 D
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            if self.predict(10.0**mid, reference) >= target:
                lo = mid
            else:
                hi = mid
        return 10.0**lo


def log_margin_agreement(reference: Outputs, outputs: Outputs) -> float:
    """Top-1 agreement expected for probability outputs: per sample the reference's margin
    m = log p1 - log p2 between its two most likely classes and the change delta of that
    same margin in ``outputs``; delta ~ N(0, sigma^2) with sigma the RMS of delta over the
    samples whose margin is at most the median (those that can flip; saturated samples'
    tiny probabilities have noisy logarithms that say nothing about a flip), and a sample
    keeps its class with probability Phi(m / sigma).

        reference, outputs: per batch, first output [..., C] probabilities -> float in [0, 1]

    On PP-LCNet's 0/180 classifier (48 calibration / 58 evaluation text crops): 0.979
    expected on the calibration crops, 0.966 counted on the evaluation crops, where
    counting the calibration crops said 1.0."""
    rows = [np.asarray(b[0], np.float64) for b in reference]
    c = rows[0].shape[-1] if rows and rows[0].ndim else 0
    if c < 2:
        return 1.0
    r = np.log(np.clip(np.concatenate([x.reshape(-1, c) for x in rows]), 1e-30, None))  # [S, C]
    o = np.log(np.clip(np.concatenate([np.asarray(b[0], np.float64).reshape(-1, c) for b in outputs]), 1e-30, None))
    o = np.nan_to_num(o, nan=-69.0)
    top = np.argsort(r, axis=1)
    rows_i = np.arange(r.shape[0])
    i1, i2 = top[:, -1], top[:, -2]
    margin = r[rows_i, i1] - r[rows_i, i2]  # [S] >= 0
    delta = (o[rows_i, i1] - o[rows_i, i2]) - margin  # [S]
    near = margin <= np.median(margin)
    sigma = math.sqrt(float(np.mean(delta[near] ** 2)))
    if sigma <= 0:
        return 1.0
    return float(np.mean(1.0 - 0.5 * _erfc(margin / (sigma * math.sqrt(2.0)))))


def _probabilities(reference: Outputs) -> bool:
    """The first output's rows are probability vectors: in [0, 1], summing to 1 (1e-3)."""
    for batch in reference:
        y = np.asarray(batch[0], np.float64)
        if y.ndim < 1 or y.min() < 0.0 or y.max() > 1.0 + 1e-6:
            return False
        if not np.allclose(y.sum(axis=-1), 1.0, atol=1e-3):
            return False
    return bool(reference)


def _erfc(x: np.ndarray) -> np.ndarray:
    """erfc, vectorised (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
        0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    r = t * np.exp(poly)
    return np.where(x >= 0, r, 2.0 - r)


# ---- the default target: what a deployment engineer would call safe, by output kind ------
DEFAULT_AGREEMENT = 0.99  # classifiers: top-1 of the class scores
DEFAULT_COSINE = 0.99  # embeddings: mean cosine per sample
DEFAULT_OUTPUT_SQNR = 30.0  # anything else: every output within 30 dB of the original
_EMBEDDING_WORDS = ("embed", "hidden", "feature", "pool", "vector")


def from_callable(name: str, fn, *, noise_per_deficit: float = 2.0, first_only: bool = False) -> Metric:
    """Register a metric given as a Python callable ``fn(reference, outputs) -> float``
    (``Outputs``: per batch, per selected output; higher is better, 1.0 for identical
    outputs), so that ``Target(name, value)`` can ask for it. The allocation's first guess
    of the noise budget is ``noise_per_deficit * (1 - target)`` relative output noise; the
    search then corrects it by real measurements, and the held-out check is ``fn`` itself."""
    if not callable(fn):
        raise ConfigError(f"metric {name!r}: {fn!r} is not callable")

    class Custom(Metric):
        unit = ""

        def measure(self, reference: Outputs, outputs: Outputs) -> float:
            return float(fn(reference, outputs))

        def budget(self, target: float, reference: Outputs) -> float:
            return noise_per_deficit * max(1.0 - target, 1e-12)

    Custom.name = name
    Custom.first_only = first_only
    METRICS[name] = Custom()
    return METRICS[name]


def default_target(model, outputs=None) -> tuple[str, float, str]:
    """(metric, target, why) for a model from its declared outputs (names, ranks, types):

    one float output [N, C] (C >= 2, no embedding-like name): top-1 agreement >= 0.99;
    an output named like an embedding (embed, hidden, feature, pool, vector): mean cosine
    >= 0.99; any other model (several outputs, grids, states): the worst per-output
    SQNR >= 30 dB, each output normalised on its own."""
    from onnx import TensorProto

    declared = {o.name: o for o in model.graph.output}
    outputs = [declared[n] for n in outputs if n in declared] if outputs else list(model.graph.output)
    if not outputs:
        raise ConfigError("the model has no outputs to measure fidelity on")
    first = outputs[0]
    t = first.type.tensor_type
    is_float = t.elem_type in (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)
    dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim] if t.HasField("shape") else None
    name = first.name.lower()
    if is_float and any(w in name for w in _EMBEDDING_WORDS):
        return "cosine", DEFAULT_COSINE, f"output {first.name!r} looks like an embedding"
    if is_float and len(outputs) == 1 and dims is not None and len(dims) == 2 and (dims[1] is None or dims[1] >= 2):
        return "agreement", DEFAULT_AGREEMENT, f"output {first.name!r} [N, C] looks like class scores"
    return "output_sqnr", DEFAULT_OUTPUT_SQNR, f"{len(outputs)} output(s), none read as class scores or an embedding"
