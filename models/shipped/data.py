"""Evaluation inputs for the RapidOCR models, built offline from packaged photos.

Sources: scikit-image's bundled sample images (``skimage.data``) and scikit-learn's
sample photo ``china.jpg``. Every image goes through RapidOCR's own loader
(``LoadImage``: RGB(A) -> BGR uint8, alpha handled the way RapidOCR does), so the models
see what they see in ``RapidOCR()(image)``.

Detection (``det_inputs``): each image of ``DET_PLAN`` is resized by RapidOCR's
``DetPreProcess.resize`` (shorter side to 736, RapidOCR's default, or 480; both sides
rounded to a multiple of 32), then chosen cells of a grid of ``DET_SIZE`` x ``DET_SIZE``
crops spread evenly over it are taken. 32 crops in all, stored as BGR uint8;
``det_normalize`` applies RapidOCR's ``DetPreProcess.normalize``/``permute`` to them.

Recognition (``rec_inputs``): the full RapidOCR pipeline (preprocess, detector, box
sorting, perspective crop, 0/180 classifier) is run on ``REC_IMAGES``; every text-line
crop is normalized by RapidOCR's ``TextRecognizer.resize_norm_img``:
  * lines no wider than 320/48 go in the 48x320 set, padded as RapidOCR pads them;
  * wider lines go twice: whole, in one 48 x (48 * widest ratio) batch exactly as
    RapidOCR batches them, and as overlapping 48x320 windows (a quarter overlap) in
    the 48x320 set.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..zoo import require

DET_SIZE = 480
# (image, shorter side after resize, grid cells taken). Cells are numbered row-major over
# the evenly spaced DET_SIZE grid of the resized image; they were picked so that 30 of the
# 32 crops hold text (or text-like texture the detector fires on) and 2 are plain photos.
DET_PLAN = (
    ("text", 736, (0, 1, 2, 3, 4, 5, 6, 7)), ("text", 480, (2,)),
    ("page", 736, (0, 1, 2, 3, 4, 5, 6, 7)), ("page", 480, (0, 1)),
    ("coins", 736, (0, 1)), ("chelsea", 736, (1, 2, 5)), ("cell", 480, (1, 3)),
    ("clock", 480, (0, 1)), ("coffee", 480, (1,)), ("moon", 736, (3,)),
    ("camera", 480, (0,)), ("china.jpg", 480, (0,)),
)
REC_IMAGES = ("page", "text", "coins", "logo", "coffee", "chelsea", "cell")
REC_HEIGHT, REC_WIDTH = 48, 320


def load_image(name: str) -> np.ndarray:
    """A packaged photo as RapidOCR loads it: BGR uint8 [H, W, 3]."""
    require("skimage", "scikit-image")
    from PIL import Image
    from rapidocr_onnxruntime.utils import LoadImage

    if name.endswith(".jpg"):
        datasets = require("sklearn.datasets", "scikit-learn")
        rgb = datasets.load_sample_image(name)
    else:
        import skimage.data

        rgb = getattr(skimage.data, name)()
    if rgb.dtype == bool:
        rgb = rgb.astype(np.uint8) * 255
    return LoadImage()(Image.fromarray(rgb))


def grid_cells(shape: tuple[int, ...], size: int) -> list[tuple[int, int]]:
    """Top-left corners of a row-major grid of size x size crops spread evenly over shape."""
    h, w = shape[:2]
    ys = np.linspace(0, h - size, math.ceil(h / size)).round().astype(int)
    xs = np.linspace(0, w - size, math.ceil(w / size)).round().astype(int)
    return [(int(y), int(x)) for y in ys for x in xs]


def det_inputs() -> tuple[np.ndarray, list[str]]:
    """The detection crops (BGR uint8 [N, DET_SIZE, DET_SIZE, 3]) and where each came from."""
    require("cv2", "opencv-python")
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    crops, sources = [], []
    for name, side, picks in DET_PLAN:
        resized = DetPreProcess(side, "min").resize(load_image(name))
        cells = grid_cells(resized.shape, DET_SIZE)
        for i in picks:
            y, x = cells[i]
            crops.append(np.ascontiguousarray(resized[y : y + DET_SIZE, x : x + DET_SIZE]))
            sources.append(f"{name} resized to {resized.shape[0]}x{resized.shape[1]}, crop at y={y} x={x}")
    return np.stack(crops), sources


def det_normalize(crops: np.ndarray) -> np.ndarray:
    """RapidOCR's DetPreProcess.normalize + permute on BGR uint8 crops -> float32 NCHW."""
    mean = np.array([0.5, 0.5, 0.5])
    std = np.array([0.5, 0.5, 0.5])
    x = (crops.astype("float32") * (1 / 255.0) - mean) / std
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).astype(np.float32)


def _text_lines(engine, img: np.ndarray) -> list[np.ndarray]:
    """RapidOCR's own path from an image to its (orientation-fixed) text-line crops."""
    img, _, _ = engine.preprocess(img)
    img, _ = engine.maybe_add_letterbox(img, {})
    boxes, _ = engine.auto_text_det(img)
    if boxes is None:
        return []
    crops = engine.get_crop_img_list(img, boxes)
    crops, _, _ = engine.text_cls(crops)
    return list(crops)


def rec_inputs() -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(short [N, 3, 48, 320], long [M, 3, 48, W], sources of short, sources of long)."""
    require("cv2", "opencv-python")
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()
    rec = engine.text_rec
    fixed_ratio = REC_WIDTH / REC_HEIGHT
    short, short_src, long_lines, long_src = [], [], [], []
    for name in REC_IMAGES:
        for j, line in enumerate(_text_lines(engine, load_image(name))):
            h, w = line.shape[:2]
            if w / h <= fixed_ratio:
                short.append(rec.resize_norm_img(line, fixed_ratio))
                short_src.append(f"{name} line{j} {h}x{w}")
                continue
            long_lines.append(line)
            long_src.append(f"{name} line{j} {h}x{w}")
            win = max(1, round(h * fixed_ratio))
            n = math.ceil((w - win) / (0.75 * win)) + 1
            for i, x in enumerate(np.linspace(0, w - win, n).round().astype(int)):
                short.append(rec.resize_norm_img(np.ascontiguousarray(line[:, x : x + win]), fixed_ratio))
                short_src.append(f"{name} line{j} {h}x{w} window{i}@x={x}")
    widest = max([line.shape[1] / line.shape[0] for line in long_lines], default=fixed_ratio)
    long = [rec.resize_norm_img(line, widest) for line in long_lines]
    long_arr = np.stack(long) if long else np.zeros((0, 3, REC_HEIGHT, int(REC_HEIGHT * widest)), np.float32)
    return np.stack(short).astype(np.float32), long_arr.astype(np.float32), short_src, long_src


def cached(path: Path, build) -> dict[str, np.ndarray]:
    """Load ``path`` (npz), building it with ``build() -> dict`` first if missing."""
    if not path.exists():
        arrays = build()
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
