"""The last word on fidelity: the compressed model, its weights decoded exactly, run on
held-out calibration samples against the original model.

    compressed --graph.decompress_model (the reference decoder: the bytes every decoder
               produces)--> dense model --onnxruntime--> outputs on the held-out samples
    original   --onnxruntime--> reference outputs on the same samples
    --> metric.measure -> Verification (passes or not)

No planner sees these samples (fit.calib.split_holdout), so the number is not flattered by
the fit; it is what the CLI reports and what a miss is judged by.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from ..graph.rewrite import decompress_model
from .calib import CalibrationSet
from .fidelity import Metric, Outputs, samples_to_confirm
from .probe import WeightProbe


@dataclass
class Verification:
    metric: str
    target: float
    value: float
    samples: int  # held-out samples measured
    synthetic: bool  # measured on synthesized inputs (not the user's data)
    attempts: int = 1  # allocations tried (the target tightened after each miss)
    internal_target: float | None = None  # the target of the last attempt (after tightening)
    counted: float | None = None  # agreement: the share of held-out samples that agree, counted

    @property
    def passed(self) -> bool:
        """The value meets the target, and (agreement) the counted share is not significantly
        below it: its one-sided 95% upper confidence bound reaches the target."""
        from .fidelity import get

        if not get(self.metric).passes(self.value, self.target):
            return False
        upper = self.upper_bound
        return upper is None or upper >= self.target

    def describe(self) -> str:
        from .fidelity import get

        m = get(self.metric)
        where = f"{self.samples} held-out {'SYNTHETIC ' if self.synthetic else ''}calibration samples"
        counted = model = ""
        if self.counted is not None and self.metric == "agreement":
            model = "" if self.counted == self.value else " (expected from the measured output noise)"
            counted = f", {round(self.counted * self.samples)}/{self.samples} agree"
            upper = self.upper_bound
            if upper is not None and upper < self.target:
                counted += f" (significantly below: at most {upper:.3f} at 95% confidence)"
        return f"{m.name} {m.format(self.value)}{model} on {where}{counted} (target {m.format(self.target)})"

    def _count(self) -> int:
        return round((self.value if self.counted is None else self.counted) * self.samples)

    @property
    def lower_bound(self) -> float | None:
        """For agreement: the one-sided 95% lower confidence bound (Clopper-Pearson) on the
        true agreement given the held-out count; None for other metrics."""
        if self.metric != "agreement" or self.samples <= 0:
            return None
        return agreement_lower_bound(self._count(), self.samples)

    @property
    def upper_bound(self) -> float | None:
        """For agreement: the one-sided 95% upper confidence bound on the true agreement given
        the held-out count (a count this low would be rare above it); None for other metrics."""
        if self.metric != "agreement" or self.samples <= 0:
            return None
        return 1.0 - agreement_lower_bound(self.samples - self._count(), self.samples)

    def caveat(self) -> str | None:
        """A warning when the held-out set is too small to confirm a passed target."""
        bound = self.lower_bound
        if bound is None or not self.passed or bound >= self.target:
            return None
        need = samples_to_confirm(self.target)
        head = f"{self.samples} held-out samples confirm the agreement only down to {bound:.3f} (95% confidence)"
        if self.samples >= need:  # enough to confirm, had every one agreed
            return f"{head}: {self.samples - self._count()} of them disagree"
        return (f"{head}; about {need} held-out samples (the default holds them out from a set of {need + 192} or "
                f"more) would confirm {self.target:g}")

    def to_dict(self) -> dict:
        return {"metric": self.metric, "target": self.target, "value": self.value, "samples": self.samples,
                "counted": self.counted, "lower_bound_95": self.lower_bound, "upper_bound_95": self.upper_bound,
                "synthetic": self.synthetic, "attempts": self.attempts, "internal_target": self.internal_target,
                "passed": self.passed}


def agreement_lower_bound(agree: int, n: int, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson lower bound on a proportion, ``agree`` of ``n`` (bisection on
    the binomial tail: the p at which P(X >= agree | p) = 1 - confidence)."""
    if agree <= 0:
        return 0.0
    alpha = 1.0 - confidence
    lo, hi = 0.0, 1.0
    for _ in range(60):
        p = 0.5 * (lo + hi)
        tail = 1.0 - _binom_cdf(agree - 1, n, p)  # P(X >= agree)
        if tail < alpha:
            lo = p
        else:
            hi = p
    return lo


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (no overflow for large n)."""
    import math

    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    lp, lq, ln = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    return min(1.0, sum(math.exp(ln - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
                        for i in range(0, k + 1)))


def reference_outputs(original: onnx.ModelProto, holdout: CalibrationSet, threads: int | None = None,
                      outputs: list[str] | None = None) -> Outputs:
    return WeightProbe(original, [], threads=threads, outputs=outputs).run(holdout.batches)


def measure(compressed: onnx.ModelProto, holdout: CalibrationSet, reference: Outputs, metric: Metric,
            threads: int | None = None, outputs: list[str] | None = None) -> tuple[float, float]:
    """(value, counted): the metric of ``compressed`` (decoded exactly) on the held-out samples
    (``outputs``: the model outputs it looks at, default all). For top-1 agreement the value
    is the share the margin model expects at the measured output noise of every sample (on a
    few samples a count moves in large steps and by chance; the noise says more) and
    ``counted`` the share counted, which Verification.passed checks against the target with
    its confidence bound; for the other metrics both are the metric."""
    dense = decompress_model(compressed)
    got = WeightProbe(dense, [], threads=threads, outputs=outputs).run(holdout.batches)
    return metric.smooth(reference, got), metric.measure(reference, got)
