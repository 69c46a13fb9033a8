"""NudeNet 3.4 detector (Ultralytics YOLOv8n, 320x320) as shipped in nudenet 3.4.2.

    det_nudenet   nudenet/320n.onnx

Input ``images`` float32 [N, 3, 320, 320] (RGB / 255, the photo padded to a square at the
bottom / right and resized: nudenet's ``_read_image``). Output ``output0`` [N, 22, 2100]:
the YOLOv8 grid of the three strides (40x40 + 20x20 + 10x10 anchors), per anchor a box
(cx, cy, w, h in input pixels) and 18 class scores. The head concatenates the three
scales and decodes boxes (DFL Softmax, anchor grid arithmetic) inside the graph.

Detections as nudenet's ``_postprocess`` makes them: best class score >= 0.2, then
OpenCV NMS (score 0.25, IoU 0.45), kept in model coordinates. Fidelity: detection F1 of
the compressed model's detections against the original's (same class, IoU >= 0.5,
greedy by score), also at a low score threshold (0.05, more boxes per image), and the
SQNR of the raw output grid.

Photos (scikit-image / scikit-learn packaged data). The detector fires on people's
faces, feet and on skin-coloured shapes; only ``astronaut`` and ``camera`` show people,
so those go in several crops and flips. Evaluation: ``EVAL``; calibration: other photos
and other crops / scalings of the two portraits (``CALIB``), never an evaluation image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..shipped import cached_copy, shipped_file
from ..zoo import FidelityTarget, Outputs, SplitArrays, register, require

NUDENET = ("nudenet", "nudenet==3.4.2")
SIZE = 320
BATCH = 8
SCORE = 0.2  # nudenet _postprocess
NMS_SCORE, NMS_IOU = 0.25, 0.45
# (photo, transform): crop = (top, left, bottom, right) as fractions; "flip" mirrors it
EVAL = (
    ("astronaut", None), ("astronaut", "flip"), ("astronaut", (0.0, 0.2, 0.6, 0.8)), ("astronaut", (0.0, 0.0, 1.0, 0.7)),
    ("camera", None), ("camera", "flip"), ("camera", (0.0, 0.2, 0.7, 0.9)), ("camera", (0.1, 0.0, 1.0, 0.8)),
    ("horse", None), ("colorwheel", None), ("chelsea", None), ("coffee", None), ("rocket", None),
    ("immunohistochemistry", None), ("coins", None), ("page", None),
)
CALIB = (
    ("astronaut", (0.0, 0.3, 0.5, 0.7)), ("astronaut", (0.05, 0.0, 0.85, 0.6)), ("astronaut", "small"),
    ("camera", (0.0, 0.3, 0.6, 0.8)), ("camera", "small"), ("camera", (0.2, 0.1, 0.9, 0.7)),
    ("horse", "flip"), ("china.jpg", None), ("clock", None), ("hubble_deep_field", None), ("retina", None),
    ("grass", None), ("brick", None), ("logo", None), ("text", None), ("flower.jpg", None),
)


def load_photo(name: str) -> np.ndarray:
    """RGB uint8 [H, W, 3] of a packaged photo."""
    if name.endswith(".jpg"):
        return require("sklearn.datasets", "scikit-learn").load_sample_image(name)
    data = require("skimage.data", "scikit-image")
    img = getattr(data, name)()
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def transformed(name: str, how) -> np.ndarray:
    img = load_photo(name)
    if how == "flip":
        return np.ascontiguousarray(img[:, ::-1])
    if how == "small":  # the whole photo at a third of its size, in the corner of a grey canvas
        import cv2

        h, w = img.shape[:2]
        canvas = np.full((h, w, 3), 114, np.uint8)
        canvas[: h // 3, : w // 3] = cv2.resize(img, (w // 3, h // 3), interpolation=cv2.INTER_AREA)
        return canvas
    if how is not None:
        h, w = img.shape[:2]
        t, l, b, r = how
        return np.ascontiguousarray(img[int(t * h) : int(b * h), int(l * w) : int(r * w)])
    return img


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """nudenet's own _read_image on the photo (it takes BGR): [3, 320, 320] float32."""
    require("cv2", "opencv-python-headless")
    require(*NUDENET)
    from nudenet.nudenet import _read_image

    return _read_image(np.ascontiguousarray(rgb[..., ::-1]), SIZE)[0][0].astype(np.float32)


def build_inputs() -> dict[str, np.ndarray]:
    return {part: np.stack([preprocess(transformed(n, how)) for n, how in plan])
            for part, plan in (("eval", EVAL), ("calib", CALIB))}


@register("det_nudenet")
class DetNudenet(SplitArrays):
    input_name, key, batch = "images", "{part}", BATCH
    name = "det_nudenet"
    title = "NudeNet YOLOv8n detector 320"
    primary = "det_f1"
    target = FidelityTarget("det_f1", 0.95, (("sqnr", 30.0), ("sqnr", 25.0)))

    def onnx_path(self) -> Path:
        return cached_copy(shipped_file(NUDENET[0], NUDENET[1], "320n.onnx"), self.cache_dir() / "model.onnx")

    def inputs(self) -> dict[str, np.ndarray]:
        from ..shipped.data import cached

        return cached(self.cache_dir() / "inputs.npz", build_inputs)

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return detection_metrics(reference, outputs)


# ---- detections and their F1 ------------------------------------------------------

def detections(grid: np.ndarray, score: float = SCORE) -> list[tuple[int, float, np.ndarray]]:
    """nudenet's _postprocess on one image's [22, A] grid, in model coordinates:
    [(class, score, box x, y, w, h)] after OpenCV NMS."""
    import cv2

    rows = grid.T
    scores = rows[:, 4:]
    best = scores.max(1)
    keep = np.nonzero(best >= score)[0]
    if not len(keep):
        return []
    cls = scores[keep].argmax(1)
    cx, cy, w, h = rows[keep, :4].T
    boxes = np.stack([cx - w / 2, cy - h / 2, w, h], 1)
    idx = cv2.dnn.NMSBoxes(boxes.tolist(), best[keep].tolist(), min(NMS_SCORE, score), NMS_IOU)
    return [(int(cls[i]), float(best[keep][i]), boxes[i]) for i in np.asarray(idx, int).reshape(-1)]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x2 - x1) * max(0.0, y2 - y1)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def match(ref: list, out: list, iou: float = 0.5) -> int:
    """Greedy matches (highest score first) of same-class boxes with IoU >= iou."""
    used, hits = set(), 0
    for c, _, box in sorted(out, key=lambda d: -d[1]):
        best, which = iou, None
        for j, (rc, _, rbox) in enumerate(ref):
            if j not in used and rc == c and _iou(box, rbox) >= best:
                best, which = _iou(box, rbox), j
        if which is not None:
            used.add(which)
            hits += 1
    return hits


def detection_metrics(reference: Outputs, outputs: Outputs) -> dict[str, float]:
    ref = np.concatenate([b[0] for b in reference]).astype(np.float64)
    out = np.concatenate([b[0] for b in outputs]).astype(np.float64)
    metrics = {}
    for key, score in (("det_f1", SCORE), ("det_f1_low", 0.05)):
        tp = n_ref = n_out = 0
        for r, o in zip(ref, out):
            dr, do = detections(r, score), detections(o, score)
            tp += match(dr, do)
            n_ref += len(dr)
            n_out += len(do)
        metrics[key] = 2 * tp / (n_ref + n_out) if n_ref + n_out else 1.0
        metrics[f"{key.replace('det_f1', 'ref_boxes')}"] = float(n_ref)
    noise = float(np.sum((out - ref) ** 2))
    metrics["grid_sqnr_db"] = float("inf") if noise == 0 else float(10 * np.log10(np.sum(ref**2) / noise))
    return metrics
