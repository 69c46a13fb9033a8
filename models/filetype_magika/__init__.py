"""Magika (Google's file-type classifier), the model shipped in magika 1.0.3.

    filetype_magika   magika/models/standard_v3_3/model.onnx

Input ``bytes`` int32 [N, 2048]: byte tokens 0..255 and the padding token 256 (the first
1024 bytes after stripping leading whitespace, the last 1024 before trailing whitespace,
padded), built by magika's own feature extraction. Output ``target_label`` float32
[N, 214]: softmax over magika's content types. Quantizing a model whose input is integer
tokens (an embedding-free one-hot / Conv front end) is what this entry exercises.

Inputs are real files: the files of packages this zoo installs (numpy, scipy,
scikit-image, scikit-learn, opencv, onnx, onnxruntime, Pillow, magika, rapidocr,
nudenet, silero-vad), grouped by extension. For each extension of ``EXTENSIONS`` the
sorted files are sampled evenly (at most ``PER_EXT`` per set) and alternate between the
evaluation and calibration sets, so the two share no file. The ground-truth label of a
file is the content type its extension names (``EXTENSIONS``). The inputs depend on the
installed package versions; they are built once and cached as
``models/cache/filetype_magika/inputs.npz`` (with the relative path of every file).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..ocr_cls import prob_metrics
from ..shipped import cached_copy, shipped_file
from ..zoo import FidelityTarget, Outputs, SplitArrays, ZooUnavailable, register, require

MAGIKA = ("magika", "magika==1.0.3")
PACKAGES = ("numpy", "scipy", "skimage", "sklearn", "cv2", "onnx", "onnxruntime", "PIL", "magika",
            "rapidocr_onnxruntime", "nudenet", "silero_vad")
# extension -> magika content type
EXTENSIONS = {
    ".py": "python", ".pyi": "python", ".pyc": "pythonbytecode", ".so": "elf", ".onnx": "onnx", ".h": "c",
    ".c": "c", ".cc": "cpp", ".cpp": "cpp", ".f90": "fortran", ".f": "fortran", ".txt": "txt", ".csv": "csv",
    ".png": "png", ".jpg": "jpeg", ".gif": "gif", ".tif": "tiff", ".npy": "npy", ".npz": "npz", ".wav": "wav",
    ".json": "json", ".ini": "ini", ".proto": "proto", ".md": "markdown", ".rst": "rst", ".css": "css",
    ".xml": "xml", ".gz": "gzip", ".exe": "pebin", ".pem": "pem", ".yaml": "yaml", ".js": "javascript",
    ".pkl": "pickle", ".html": "html", ".toml": "toml",
}
PER_EXT = 8
BATCH = 64


def _site_files() -> dict[str, list[tuple[str, Path]]]:
    """extension -> sorted [(package-relative path, path)] over PACKAGES that are installed."""
    found: dict[str, list[tuple[str, Path]]] = {}
    for pkg in PACKAGES:
        spec = importlib.util.find_spec(pkg)  # locates the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(list(spec.submodule_search_locations)[0])
        for f in root.rglob("*"):
            ext = f.suffix.lower()
            if ext in EXTENSIONS and f.is_file():
                found.setdefault(ext, []).append((f"{pkg}/{f.relative_to(root).as_posix()}", f))
    return {ext: sorted(files) for ext, files in found.items()}


def build_inputs() -> dict[str, np.ndarray]:
    require(*MAGIKA)
    from magika import Magika

    magika = Magika()
    labels = list(magika._model_config.target_labels_space)
    sets = {"eval": ([], [], []), "calib": ([], [], [])}
    for ext, files in sorted(_site_files().items()):
        usable = []
        for rel, path in files:
            result, features = magika._get_result_or_features_from_path(path)
            if features is not None:  # large enough for the model (else magika decides without it)
                usable.append((rel, list(features.beg) + list(features.end)))
        picks = np.unique(np.linspace(0, len(usable) - 1, min(len(usable), 2 * PER_EXT)).round().astype(int))
        for i, k in enumerate(picks):
            x, y, src = sets["eval" if i % 2 == 0 else "calib"]
            rel, tokens = usable[k]
            x.append(tokens)
            y.append(labels.index(EXTENSIONS[ext]))
            src.append(rel)
    return {f"{s}_{part}": np.asarray(v[i], dtype=(np.int32, np.int64, str)[i])
            for s, v in sets.items() for i, part in enumerate(("x", "y", "sources"))}


@register("filetype_magika")
class FiletypeMagika(SplitArrays):
    input_name, batch = "bytes", BATCH
    name = "filetype_magika"
    title = "Magika file-type classifier (standard_v3_3)"
    primary = "top1_agreement"
    target = FidelityTarget("top1_agreement", 0.98, (("agreement", 0.99), ("agreement", 0.97)), stated=("agreement", 0.98))
    relpath = "models/standard_v3_3/model.onnx"

    def onnx_path(self) -> Path:
        return cached_copy(shipped_file(MAGIKA[0], MAGIKA[1], self.relpath), self.cache_dir() / "model.onnx")

    def inputs(self) -> dict[str, np.ndarray]:
        from ..shipped.data import cached

        arrays = cached(self.cache_dir() / "inputs.npz", build_inputs)
        if not len(arrays["eval_x"]):
            raise ZooUnavailable("no files found to classify: pip install -e '.[zoo]'")
        return arrays

    def fidelity(self, reference: Outputs, outputs: Outputs) -> dict[str, float]:
        return prob_metrics(reference, outputs, self.inputs()["eval_y"])
