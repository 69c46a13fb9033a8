"""Real fp32 ONNX models exactly as shipped inside PyPI packages (no export).

    ppocr_det   RapidOCR's PP-OCRv4 text detector (DBNet), rapidocr-onnxruntime 1.4.4
    ppocr_rec   RapidOCR's PP-OCRv4 text recognizer (SVTR-LCNet, CTC), same package

``onnx_path()`` copies the package's own .onnx file to ``models/cache/<name>/model.onnx``
(so file sizes are measured on a plain copy); inputs are built once from packaged photos
(see ``data.py``) and cached as ``models/cache/<name>/inputs.npz``. See README.md.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import numpy as np

from ..zoo import FidelityTarget, Outputs, ZooModel, ZooUnavailable, register, require

RAPIDOCR = ("rapidocr_onnxruntime", "rapidocr-onnxruntime==1.4.4")
DET_THRESH = 0.3  # RapidOCR's DBPostProcess thresh (config.yaml Det.thresh)
DET_BATCH = 8
REC_BATCH = 8


def shipped_file(module: str, package: str, relpath: str) -> Path:
    """Path of a file inside an installed package; ZooUnavailable if it is missing."""
    require(module, package)
    path = Path(str(resources.files(module).joinpath(relpath)))
    if not path.is_file():
        raise ZooUnavailable(f"{module} has no {relpath}: pip install {package}")
    return path


def cached_copy(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` unless an identical-size copy is already there."""
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        tmp = target.with_suffix(".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return target


def _limit(arrays: list[np.ndarray], limit: int | None) -> list[np.ndarray]:
    """Cap the total number of samples over consecutive batches."""
    if limit is None:
        return arrays
    out, left = [], max(int(limit), 0)
    for a in arrays:
        if left <= 0:
            break
        out.append(a[:left])
        left -= len(out[-1])
    return out


class _RapidOcrModel(ZooModel):
    relpath: str

    def onnx_path(self) -> Path:
        source = shipped_file(RAPIDOCR[0], RAPIDOCR[1], self.relpath)
        return cached_copy(source, self.cache_dir() / "model.onnx")


@register("ppocr_det")
class PpOcrDet(_RapidOcrModel):
    name = "ppocr_det"
    title = "PP-OCRv4 text detection (RapidOCR)"
    primary = "mask_iou"
    target = FidelityTarget("mask_iou", 0.97, (("sqnr", 30.0), ("sqnr", 25.0)))
    relpath = "models/ch_PP-OCRv4_det_infer.onnx"

    def inputs(self) -> dict[str, np.ndarray]:
        from . import data

        def build():
            require(*RAPIDOCR)
            crops, sources = data.det_inputs()
            return {"crops": crops, "sources": np.array(sources)}

        return data.cached(self.cache_dir() / "inputs.npz", build)

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        from .data import det_normalize

        crops = self.inputs()["crops"]
        batches = [crops[i : i + DET_BATCH] for i in range(0, len(crops), DET_BATCH)]
        return [{"x": det_normalize(b)} for b in _limit(batches, limit)]

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return det_metrics(reference, outputs)


@register("ppocr_rec")
class PpOcrRec(_RapidOcrModel):
    name = "ppocr_rec"
    title = "PP-OCRv4 text recognition (RapidOCR)"
    primary = "char_agreement"
    target = FidelityTarget("char_agreement", 0.97, (("sqnr", 30.0), ("sqnr", 25.0), ("sqnr", 21.0)))
    relpath = "models/ch_PP-OCRv4_rec_infer.onnx"

    def inputs(self) -> dict[str, np.ndarray]:
        from . import data

        def build():
            require(*RAPIDOCR)
            short, long, short_src, long_src = data.rec_inputs()
            return {"short": short, "long": long, "short_sources": np.array(short_src),
                    "long_sources": np.array(long_src)}

        return data.cached(self.cache_dir() / "inputs.npz", build)

    def feeds(self, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        arrays = self.inputs()
        short, long = arrays["short"], arrays["long"]
        batches = [short[i : i + REC_BATCH] for i in range(0, len(short), REC_BATCH)]
        batches += [long[i : i + REC_BATCH] for i in range(0, len(long), REC_BATCH)]
        return [{"x": b} for b in _limit(batches, limit)]

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return ctc_metrics(reference, outputs)


# ---- metrics ---------------------------------------------------------------------

def det_metrics(reference: Outputs, outputs: Outputs, thresh: float = DET_THRESH) -> dict[str, float]:
    """Probability-map SQNR and agreement of the text masks (prob > thresh) [N, 1, H, W]."""
    ref = np.concatenate([b[0] for b in reference]).astype(np.float64)
    out = np.concatenate([b[0] for b in outputs]).astype(np.float64)
    a, b = ref > thresh, out > thresh
    inter = np.logical_and(a, b).reshape(len(a), -1).sum(1)
    union = np.logical_or(a, b).reshape(len(a), -1).sum(1)
    sizes = a.reshape(len(a), -1).sum(1) + b.reshape(len(b), -1).sum(1)
    per_image = inter[union > 0] / union[union > 0]
    return {
        "mask_iou": float(inter.sum() / union.sum()) if union.sum() else 1.0,
        "mask_f1": float(2 * inter.sum() / sizes.sum()) if sizes.sum() else 1.0,
        "worst_image_iou": float(per_image.min()) if len(per_image) else 1.0,
        "prob_sqnr_db": _sqnr(float(np.sum(ref**2)), float(np.sum((out - ref) ** 2))),
    }


def _sqnr(signal: float, noise: float) -> float:
    return float("inf") if noise == 0 else float(10 * np.log10(signal / noise))


def ctc_greedy(probs: np.ndarray) -> list[tuple[int, ...]]:
    """Greedy CTC decoding as RapidOCR does it: argmax, merge repeats, drop blank (0)."""
    best = probs.argmax(axis=-1)
    seqs = []
    for row in best:
        keep = np.ones(len(row), bool)
        keep[1:] = row[1:] != row[:-1]
        seqs.append(tuple(int(c) for c in row[keep & (row != 0)]))
    return seqs


def _edit_distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def ctc_metrics(reference: Outputs, outputs: Outputs) -> dict[str, float]:
    """CTC outputs [N, T, classes] per batch (T may differ between batches).

    char_agreement: 1 - (total edit distance of the decoded strings) / (total reference
    characters), floored at 0; seq_agreement: share of identical decoded strings;
    frame_agreement: share of time steps with the same argmax; prob_sqnr_db.
    """
    ref_seqs, out_seqs, frames, same_frames = [], [], 0, 0
    signal = noise = 0.0
    for rb, ob in zip(reference, outputs):
        r, o = rb[0].astype(np.float64), ob[0].astype(np.float64)
        ref_seqs += ctc_greedy(r)
        out_seqs += ctc_greedy(o)
        same_frames += int(np.sum(r.argmax(-1) == o.argmax(-1)))
        frames += r.shape[0] * r.shape[1]
        signal += float(np.sum(r**2))
        noise += float(np.sum((o - r) ** 2))
    edits = sum(_edit_distance(a, b) for a, b in zip(ref_seqs, out_seqs))
    chars = sum(len(a) for a in ref_seqs)
    return {
        "char_agreement": max(0.0, 1.0 - edits / chars) if chars else float(edits == 0),
        "seq_agreement": float(np.mean([a == b for a, b in zip(ref_seqs, out_seqs)])),
        "frame_agreement": same_frames / frames if frames else 1.0,
        "prob_sqnr_db": _sqnr(signal, noise),
    }
