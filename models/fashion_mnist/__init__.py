"""The bundled example: ResNet-20 on Fashion-MNIST (committed ONNX file and test set)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..zoo import FidelityTarget, Outputs, ZooModel, logits_metrics, register
from .data import load_test_data, model_path


@register("fmnist")
class FashionMnist(ZooModel):
    name = "fmnist"
    title = "ResNet-20, Fashion-MNIST"
    primary = "accuracy"
    # Within 1 point of the original's 91.77% test accuracy.
    target = FidelityTarget("accuracy", 0.9077, (("agreement", 0.97), ("agreement", 0.95), ("agreement", 0.93)),
                            stated=("agreement", 0.97))

    def onnx_path(self) -> Path:
        return Path(model_path())

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        images, _ = load_test_data()
        images = images[:limit]
        return [{"input": images[i : i + 1000]} for i in range(0, len(images), 1000)]

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return logits_metrics(reference, outputs, load_test_data()[1])
