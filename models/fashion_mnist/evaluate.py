"""Predictions of an onnxruntime session on the bundled test images (numpy only)."""

from __future__ import annotations

import numpy as np


def predict(session, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """images float32 [N,1,28,28] -> predicted class int64 [N]."""
    name = session.get_inputs()[0].name
    out = [np.argmax(session.run(None, {name: images[i : i + batch]})[0], axis=1) for i in range(0, len(images), batch)]
    return np.concatenate(out).astype(np.int64)
