"""Smoke tests of the zoo entries for models shipped in packages (docs/research/zoo2.md),
and of the two derived from zoo models by standard tools (fp16 with Cast, int8 QDQ).

Each entry is skipped with the reason when its package (or its data) is missing; else it
builds, its feeds run in onnxruntime, and the original scores perfectly against itself."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from models import zoo

ENTRIES = ["ocr_cls", "filetype_magika", "det_nudenet", "vad_silero", "minilm_fp16", "efficientnet_lite0_qdq"]
PERFECT = {  # metrics that must be exactly these for the original against itself
    "top1_agreement": 1.0, "det_f1": 1.0, "det_f1_low": 1.0, "decision_agreement": 1.0, "edge_recall": 1.0,
    "max_prob_error": 0.0, "max_abs_error": 0.0, "kl": 0.0,
}


def _entry(name: str):
    importlib.import_module(f"models.{name}")  # registers it even where zoo._load_entries does not list it
    try:
        model = zoo.get(name)
        path = model.onnx_path()
        feeds = model.feeds()
    except zoo.ZooUnavailable as exc:
        pytest.skip(str(exc))
    return model, path, feeds


@pytest.mark.parametrize("name", ENTRIES)
def test_entry_runs_and_is_perfect_against_itself(name):
    import onnxruntime as ort

    model, path, feeds = _entry(name)
    assert feeds and all(isinstance(f, dict) and f for f in feeds)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    assert all(set(f) == names for f in feeds)
    outputs = model.run(session, feeds)
    assert len(outputs) == len(feeds)
    metrics = model.fidelity(outputs, outputs)
    assert model.primary in metrics and model.target is not None and model.target.metric in metrics
    for key, want in PERFECT.items():
        if key in metrics:
            assert metrics[key] == want, (key, metrics[key])
    assert metrics[model.target.metric] >= model.target.threshold
    if "accuracy" in metrics:
        assert 0.5 < metrics["accuracy"] <= 1.0


@pytest.mark.parametrize("name", ENTRIES)
def test_calibration_is_separate_and_runs(name):
    import onnxruntime as ort

    model, path, feeds = _entry(name)
    calib = model.calibration(16)
    assert calib
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for feed in calib[:2]:
        session.run(None, feed)
    first = next(iter(feeds[0]))
    evaluation = {_row_key(row) for f in feeds for row in f[first]}
    for feed in calib:
        for row in feed[first]:
            assert _row_key(row) not in evaluation, "calibration sample in feeds"


def _row_key(row: np.ndarray) -> bytes:
    """A sample's identity whatever its batch's padding (token ids padded with zeros at the end)."""
    flat = row.ravel()
    if flat.dtype.kind in "iu":
        flat = np.trim_zeros(flat, "b")
    return flat.dtype.str.encode() + flat.tobytes()


def test_stateful_vad_carries_its_state():
    import onnxruntime as ort

    model, path, feeds = _entry("vad_silero")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    carried = model.run(session, feeds[:60])
    independent = [session.run(None, f) for f in feeds[:60]]
    assert model.fidelity(carried, independent)["max_abs_error"] > 0.05
    assert 0.2 < model.fidelity(carried, carried)["speech_fraction"] < 0.9


def test_missing_package_is_zoo_unavailable(monkeypatch):
    import importlib.util

    from models.vad_silero import model_file

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "silero_vad" else real(n, *a))
    with pytest.raises(zoo.ZooUnavailable, match="pip install"):
        model_file()
    assert not math.isnan(0.0)
