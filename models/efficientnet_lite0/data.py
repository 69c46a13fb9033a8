"""Evaluation inputs: deterministic 224x224 views of the colour photos packaged with
scikit-image and scikit-learn (no download).

Each sample takes the photos in turn and draws, from a seeded generator, a square-ish crop
(side 30-100% of the shorter image side, aspect 3:4..4:3, anywhere in the image), an
optional horizontal flip, and resizes it to 224x224 (anti-aliased bilinear). One sample in
eight instead squashes the whole photo to 224x224. Stored as uint8 NCHW; ``feeds()``
divides by 255 to get the model's float32 [0, 1] input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..zoo import require

SIZE = 224
COUNT = 384
SEED = 20240611

# skimage.data colour photos (cat() is the same image as chelsea(); colorwheel/logo are not photos)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")


def photos() -> dict[str, np.ndarray]:
    """name -> uint8 RGB [H, W, 3]."""
    data = require("skimage.data", "scikit-image")
    datasets = require("sklearn.datasets", "scikit-learn")
    out = {name: getattr(data, name)() for name in SKIMAGE_PHOTOS}
    left, right, _ = data.stereo_motorcycle()
    out["motorcycle_left"], out["motorcycle_right"] = left, right
    sample = datasets.load_sample_images()
    for filename, image in zip(sample.filenames, sample.images):
        out[Path(filename).stem] = image  # china, flower
    for name, image in out.items():
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, name
    return out


def make_inputs(count: int = COUNT, seed: int = SEED) -> dict[str, np.ndarray]:
    transform = require("skimage.transform", "scikit-image")
    named = photos()
    names, images = list(named), list(named.values())
    rng = np.random.default_rng(seed)
    out = np.empty((count, 3, SIZE, SIZE), np.uint8)
    source = np.empty(count, np.int16)
    boxes = np.empty((count, 5), np.int32)  # y, x, h, w, flipped
    for i in range(count):
        k = i % len(images)
        image = images[k]
        height, width = image.shape[:2]
        if rng.random() < 1 / 8:
            y, x, h, w = 0, 0, height, width
        else:
            side = rng.uniform(0.3, 1.0) * min(height, width)
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            h = int(min(height, round(side * np.sqrt(aspect))))
            w = int(min(width, round(side / np.sqrt(aspect))))
            y, x = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        flip = bool(rng.random() < 0.5)
        crop = image[y : y + h, x : x + w]
        if flip:
            crop = crop[:, ::-1]
        resized = transform.resize(crop, (SIZE, SIZE), order=1, anti_aliasing=True, preserve_range=True)
        out[i] = np.clip(np.rint(resized), 0, 255).astype(np.uint8).transpose(2, 0, 1)
        source[i] = k
        boxes[i] = (y, x, h, w, flip)
    return {"images": out, "source": source, "boxes": boxes, "names": np.array(names)}


def load_inputs(path: Path) -> np.ndarray:
    """uint8 [N, 3, 224, 224], built and cached at ``path`` on first use."""
    if not path.exists():
        arrays = make_inputs()
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, **arrays)
        tmp.replace(path)
    with np.load(path) as data:
        return data["images"]
