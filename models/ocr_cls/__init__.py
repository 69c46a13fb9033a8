"""PP-LCNet text-orientation classifier (0 / 180 degrees) as shipped in rapidocr-onnxruntime 1.4.4.

    ocr_cls   rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx

Weights live in ``Constant`` nodes (no initializers), like the other PP-OCR models.
Inputs are real text lines: RapidOCR's own pipeline (detector, crop, its orientation fix)
on photos packaged with scikit-image / scikit-learn (``models.shipped.data``); each line
is cut into overlapping 48x192-shaped windows (aspect 4, a quarter overlap) besides the
whole line, and every crop goes in upright (label 0) and rotated by 180 degrees
(label 1), normalised by RapidOCR's ``TextClassifier.resize_norm_img`` to [3, 48, 192].
Lines alternate between the evaluation set (even line index in each image) and the
calibration set (odd), so the two never share a text line. See README.md.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..shipped import RAPIDOCR, cached_copy, shipped_file
from ..zoo import FidelityTarget, Outputs, SplitArrays, register, require

IMAGES = ("page", "text", "coins", "logo", "coffee", "chelsea", "cell", "horse")
SHAPE = (3, 48, 192)  # RapidOCR config.yaml Cls.cls_image_shape
BATCH = 16


def _windows(line: np.ndarray) -> list[np.ndarray]:
    """The whole line, and windows of aspect 4 (the classifier's 192/48) a quarter overlapping."""
    h, w = line.shape[:2]
    out = [line]
    win = max(1, round(h * SHAPE[2] / SHAPE[1]))
    if w > 1.25 * win:
        n = math.ceil((w - win) / (0.75 * win)) + 1
        out += [np.ascontiguousarray(line[:, x : x + win]) for x in np.linspace(0, w - win, n).round().astype(int)]
    return out


def build_inputs() -> dict[str, np.ndarray]:
    require(*RAPIDOCR)
    require("cv2", "opencv-python")
    import cv2
    from rapidocr_onnxruntime import RapidOCR

    from ..shipped.data import _text_lines, load_image

    engine = RapidOCR()
    cls = engine.text_cls
    sets: dict[str, tuple[list, list, list]] = {"eval": ([], [], []), "calib": ([], [], [])}
    for name in IMAGES:
        for j, line in enumerate(_text_lines(engine, load_image(name))):
            x, y, src = sets["eval" if j % 2 == 0 else "calib"]
            for k, crop in enumerate(_windows(line)):
                for label, img in ((0, crop), (1, cv2.rotate(crop, cv2.ROTATE_180))):
                    x.append(cls.resize_norm_img(img))
                    y.append(label)
                    src.append(f"{name} line{j} {line.shape[0]}x{line.shape[1]} {'whole' if k == 0 else f'window{k - 1}'}"
                               f" {'180' if label else '0'}")
    return {f"{s}_{part}": np.asarray(v[i], dtype=(np.float32, np.int64, str)[i])
            for s, v in sets.items() for i, part in enumerate(("x", "y", "sources"))}


@register("ocr_cls")
class OcrCls(SplitArrays):
    input_name, batch = "x", BATCH
    name = "ocr_cls"
    title = "PP-LCNet text orientation 0/180 (RapidOCR)"
    primary = "top1_agreement"
    target = FidelityTarget("top1_agreement", 0.98, (("agreement", 0.99), ("agreement", 0.97)), stated=("agreement", 0.98))
    relpath = "models/ch_ppocr_mobile_v2.0_cls_infer.onnx"

    def onnx_path(self) -> Path:
        return cached_copy(shipped_file(RAPIDOCR[0], RAPIDOCR[1], self.relpath), self.cache_dir() / "model.onnx")

    def inputs(self) -> dict[str, np.ndarray]:
        from ..shipped.data import cached

        return cached(self.cache_dir() / "inputs.npz", build_inputs)

    def labels(self) -> np.ndarray:
        return self.inputs()["eval_y"]

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return prob_metrics(reference, outputs, self.labels())


def prob_metrics(reference: Outputs, outputs: Outputs, labels: np.ndarray | None = None) -> dict[str, float]:
    """Classifier fidelity from the first output when it already holds probabilities [N, classes]:
    top-1 agreement, accuracy against ``labels``, largest probability error, mean KL(ref || out)."""
    ref = np.concatenate([b[0] for b in reference]).astype(np.float64)
    out = np.concatenate([b[0] for b in outputs]).astype(np.float64)
    eps = 1e-12
    metrics = {
        "top1_agreement": float(np.mean(ref.argmax(1) == out.argmax(1))),
        "max_prob_error": float(np.max(np.abs(ref - out))) if ref.size else 0.0,
        "kl": float(np.mean(np.sum(ref * (np.log(ref + eps) - np.log(out + eps)), axis=1))),
    }
    if labels is not None:
        metrics["accuracy"] = float(np.mean(out.argmax(1) == labels[: len(out)]))
    return metrics
