"""Numpy-only access to the bundled Fashion-MNIST example model and its test data.

>>> from models.fashion_mnist.data import load_test_data, model_path
>>> images, labels = load_test_data()   # float32 [N,1,28,28] in [0,1], int64 [N]
>>> onnx_file = model_path()             # .../models/fashion_mnist/resnet20_fmnist.onnx

The ONNX model takes input "input" (float32 [batch, 1, 28, 28], pixels in
[0, 1]; it normalizes internally) and returns "logits" (float32 [batch, 10]).
Both files are produced by train.py in this folder.
"""

from __future__ import annotations

import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_FILE = "resnet20_fmnist.onnx"
TEST_DATA_FILE = "test_data.npz"
CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


def model_path() -> str:
    """Absolute path of the bundled ONNX model (resnet20_fmnist.onnx)."""
    return os.path.join(HERE, MODEL_FILE)


def test_data_path() -> str:
    """Absolute path of the bundled test set (test_data.npz)."""
    return os.path.join(HERE, TEST_DATA_FILE)


def load_test_data(path: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load the Fashion-MNIST test set saved by train.py.

    Returns ``(images, labels)``: images float32 of shape [N, 1, 28, 28] with
    values in [0, 1] (ready to feed to the model's "input"), labels int64 [N].
    """
    with np.load(test_data_path() if path is None else path) as npz:
        images = npz["images"]
        labels = npz["labels"]
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise ValueError(f"unexpected test data shapes {images.shape}, {labels.shape}")
    x = (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]
    return np.ascontiguousarray(x), labels.astype(np.int64)
