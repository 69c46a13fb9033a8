"""The bundled example: default settings compress >= 6x within 0.5 points of accuracy."""

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.fashion_mnist.data import load_test_data, model_path  # noqa: E402
from models.fashion_mnist.evaluate import predict  # noqa: E402
from onnx_udc import CompressConfig, InferenceSession, compress_model  # noqa: E402
from onnx_udc.graph.modelio import load_model, save_model  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return load_test_data()


@pytest.fixture(scope="module")
def baseline(data):
    images, labels = data
    session = ort.InferenceSession(model_path(), providers=["CPUExecutionProvider"])
    pred = predict(session, images)
    return pred, float((pred == labels).mean())


def test_bundled_files_are_small_and_real(data, baseline):
    images, labels = data
    assert len(labels) >= 5000 and set(np.unique(labels)) == set(range(10))
    assert baseline[1] > 0.90  # a trained model, not a stub
    assert Path(model_path()).stat().st_size < 2_000_000


def test_default_settings_meet_the_promise(tmp_path, data, baseline, library):
    images, labels = data
    ref, base_acc = baseline
    model, report = compress_model(load_model(model_path()), CompressConfig())
    path = tmp_path / "m.udc.onnx"
    save_model(model, path)
    ratio = Path(model_path()).stat().st_size / path.stat().st_size
    assert ratio >= 6.0, f"whole-file ratio {ratio:.2f}x"
    for fast in (True, False):
        pred = predict(InferenceSession(path, fast=fast), images)
        acc = float((pred == labels).mean())
        assert acc >= base_acc - 0.005, f"accuracy {acc:.4f} vs {base_acc:.4f} (fast={fast})"
