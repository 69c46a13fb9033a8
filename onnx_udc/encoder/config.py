"""What to do with each weight: the settings of one compression and the per-tensor plan.

    CompressConfig   fixed settings (quantizer, coder, step rule, seed, ...) plus what the
                     planners hand the encoder: per-tensor steps (rate allocation) and
                     per-tensor quantizer configs (product-quantization fits)
    TensorPlan       one weight: quantizer name, its config (axis order applied), seed

    Candidate (graph.select) --CompressConfig.tensor_plan--> TensorPlan --codec.quantize--> Quantized
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from .. import quantizers
from . import backends
from ..format.dither import derive_seed
from ..graph.select import Action, Candidate
from ..quantizers.base import StepConfig
from ..quantizers.scalar import ScalarConfig

# Below this RMS a quantization step would be subnormal in float32 (the quantizers refuse
# it): such tensors (all zero, or decayed to ~1e-38) are stored exactly, which costs nothing.
NEGLIGIBLE_RMS = 1e-30
EXACT = "raw"  # the quantizer of a tensor kept bit-exact


@dataclass(frozen=True)
class TensorPlan:
    """What the encoder does with one weight (quantizer EXACT: bit-exact)."""

    name: str
    quantizer: str
    config: object = None
    seed: int = 0

    @property
    def exact(self) -> bool:
        return self.quantizer == EXACT


@dataclass(frozen=True)
class CompressConfig:
    """Everything a fixed-settings compression needs to know.

    quantizer:    registered lossy quantizer for float weights ("scalar")
    coder:        registered lossless coder ("rans", "brotli", "range", "store") or "auto"
                  (codec.auto_coders: rans, and brotli too for wide lossless tensors)
    scalar:       step rule of step-based quantizers (StepConfig: step_rel or target_bpw)
    seed:         model seed; each tensor's dither seed derives from it and its name
    min_elements: initializers with fewer elements stay dense
    threads:      parallel encoders (default: CPU count)
    steps:        per-tensor plan (rate allocation): name -> absolute step, or None to
                  code that tensor losslessly; tensors not listed use ``scalar``
    quantizer_configs: name -> (quantizer, its config) for tensors coded by another
                  quantizer than ``quantizer`` (product quantization fits: fit.pq_model)
    keep:         a regular expression: weights whose name it matches (re.search) stay exact
    backend:      where the fixed-settings encode jobs run (encoder.backends: "threads",
                  "processes", "ray"); the bytes are the same for every backend
    backend_address: ray: the cluster (ray.init's address: "auto", "ray://head:10001");
                  None: the instance initialised in this process, else a local one
    """

    quantizer: str = "scalar"
    coder: str = "auto"
    scalar: ScalarConfig = field(default_factory=ScalarConfig)
    seed: int = 0
    min_elements: int = 1024
    threads: int | None = None
    steps: Mapping[str, float | None] | None = None
    quantizer_configs: Mapping[str, tuple[str, object]] | None = None
    keep: str | None = None
    backend: str = "threads"
    backend_address: str | None = None

    def __post_init__(self) -> None:
        backends.check(self.backend, self.backend_address)

    def kept_exact(self, name: str) -> bool:
        return self.keep is not None and re.search(self.keep, name) is not None

    def step_config(self, name: str) -> StepConfig | None:
        """The step configuration of one tensor; None means: code it losslessly."""
        if self.steps is None or name not in self.steps:
            return self.scalar
        step = self.steps[name]
        return None if step is None else replace(self.scalar, step=float(step), target_bpw=None)

    def tensor_plan(self, cand: Candidate, array: np.ndarray) -> TensorPlan:
        """The plan of one selected weight (QUANTIZE or LOSSLESS) with its values ``array``."""
        step_config = self.step_config(cand.name)
        if (cand.action is not Action.QUANTIZE or step_config is None or self.kept_exact(cand.name)
                or not finite_and_live(array)):
            return TensorPlan(cand.name, EXACT)  # planned exact, integer, all-zero, negligible or non-finite
        quantizer, qconfig = (self.quantizer_configs or {}).get(cand.name, (self.quantizer, step_config))
        order = cand.use.axis_order if cand.use is not None else tuple(range(len(cand.shape)))
        qconfig = quantizers.by_name(quantizer).tensor_config(qconfig, order)
        return TensorPlan(cand.name, quantizer, qconfig, derive_seed(self.seed, cand.name))


def negligible(array: np.ndarray) -> bool:
    return not np.any(array) or float(np.sqrt(np.mean(np.square(array, dtype=np.float64)))) < NEGLIGIBLE_RMS


def finite_and_live(array: np.ndarray) -> bool:
    """Every value finite and the RMS at least NEGLIGIBLE_RMS (not all zero): one pass, the
    sum of squares in float64 (finite exactly when every float16 / float32 value is: their
    squares cannot overflow it), without the temporaries of isfinite + any + square."""
    if array.dtype.kind != "f" or array.dtype.itemsize > 4:  # float64: squares can overflow
        return bool(np.all(np.isfinite(array))) and not negligible(array)
    flat = array.reshape(-1)
    if not flat.size:
        return False
    energy = float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    return math.isfinite(energy) and energy > 0 and math.sqrt(energy / flat.size) >= NEGLIGIBLE_RMS
