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
from .fidelity import Metric, Outputs
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

    @property
    def passed(self) -> bool:
        from .fidelity import get

        return get(self.metric).passes(self.value, self.target)

    def describe(self) -> str:
        from .fidelity import get

        m = get(self.metric)
        where = f"{self.samples} held-out {'SYNTHETIC ' if self.synthetic else ''}calibration samples"
        return f"{m.name} {m.format(self.value)} on {where} (target {m.format(self.target)})"

    def to_dict(self) -> dict:
        return {"metric": self.metric, "target": self.target, "value": self.value, "samples": self.samples,
                "synthetic": self.synthetic, "attempts": self.attempts, "internal_target": self.internal_target,
                "passed": self.passed}


def reference_outputs(original: onnx.ModelProto, holdout: CalibrationSet, threads: int | None = None,
                      outputs: list[str] | None = None) -> Outputs:
    return WeightProbe(original, [], threads=threads, outputs=outputs).run(holdout.batches)


def measure(compressed: onnx.ModelProto, holdout: CalibrationSet, reference: Outputs, metric: Metric,
            threads: int | None = None, outputs: list[str] | None = None) -> float:
    """The metric of ``compressed`` (decoded exactly) on the held-out samples (``outputs``:
    the model outputs it looks at, default all)."""
    dense = decompress_model(compressed)
    return metric.measure(reference, WeightProbe(dense, [], threads=threads, outputs=outputs).run(holdout.batches))
