"""The default target-driven pipeline reaches end-to-end distillation (onnx_udc.finetune)
when torch is installed, and says clearly what happens when it is not."""

from __future__ import annotations

import importlib
import sys

import numpy as np
import pytest

import modelzoo
from onnx_udc.errors import ConfigError
from onnx_udc.fit.allocate import Target
from onnx_udc.pipeline import CompressSpec, compress


def feeds(n=128, dim=64, seed=1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((16, dim)).astype(np.float32)} for _ in range(n // 16)]


def test_distill_mode_is_checked():
    with pytest.raises(ConfigError, match="distill"):
        CompressSpec(distill="sometimes")


def test_without_torch_auto_skips_and_on_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    spec = CompressSpec(target=Target("output_sqnr", 25.0), calib=feeds())
    result = compress(modelzoo.mlp(), spec)
    assert result.distill is None and result.verification.passed
    with pytest.raises(ConfigError, match=r"onnx-udc\[finetune\]"):
        compress(modelzoo.mlp(), CompressSpec(target=Target("output_sqnr", 25.0), calib=feeds(), distill="on"))


def _first_check_misses(monkeypatch):
    """check.measure as it is, except that the first held-out check reports 100 dB less."""
    from onnx_udc.fit import check

    real, calls = check.measure, []

    def measure(*args, **kwargs):
        value, counted = real(*args, **kwargs)
        calls.append(value)
        return (value - 100.0, counted) if len(calls) == 1 else (value, counted)

    monkeypatch.setattr(check, "measure", measure)
    return calls


def test_a_held_out_miss_is_first_retried_with_distillation(monkeypatch):
    pipeline = importlib.import_module("onnx_udc.pipeline.compress")
    tried = []
    real = pipeline._distilled
    monkeypatch.setattr(pipeline, "_distilled", lambda *a, **k: (tried.append(1), real(*a, **k))[1])
    _first_check_misses(monkeypatch)
    result = compress(modelzoo.mlp(), CompressSpec(target=Target("output_sqnr", 25.0), calib=feeds()))
    assert tried and result.verification.passed


def test_with_torch_a_miss_is_distilled(monkeypatch):
    pytest.importorskip("torch")
    _first_check_misses(monkeypatch)
    result = compress(modelzoo.mlp(), CompressSpec(target=Target("output_sqnr", 25.0), calib=feeds()))
    assert "distillation" in result.seconds and result.verification.passed


def test_a_passing_model_is_not_distilled():
    result = compress(modelzoo.mlp(), CompressSpec(target=Target("output_sqnr", 25.0), calib=feeds()))
    assert result.distill is None and result.verification.passed


def test_too_few_whole_feeds_to_hold_out_skip_distillation_instead_of_failing():
    """A fixed-batch model whose fit part is one feed: distillation cannot keep a feed for
    its own check, which is a DistillError (the pipeline then goes on without it), not the
    calibration's ConfigError ending the whole compression."""
    import numpy as np
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    from onnx_udc.finetune import DistillError
    from onnx_udc.finetune.distill import _split

    w = nh.from_array(np.ones((4, 3), np.float32), "W")
    graph = h.make_graph([h.make_node("MatMul", ["x", "W"], ["y"])], "g",
                         [h.make_tensor_value_info("x", T.FLOAT, [2, 4])], [h.make_tensor_value_info("y", T.FLOAT, [2, 3])], [w])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    with pytest.raises(DistillError, match="too few"):
        _split([{"x": np.zeros((2, 4), np.float32)}], None, model)


def test_distillation_steps_are_bounded_by_predicted_work(monkeypatch):
    """The default's distillation gets steps from the model's multiply-accumulates, never a
    clock: a small model all of them, an EfficientNet-sized one none (it would take most of an
    hour on 2 cores), --distill on always all; a skip is said, not silent."""
    pipeline = importlib.import_module("onnx_udc.pipeline.compress")
    assert pipeline.distill_steps(31e6) == pipeline.DISTILL_STEPS  # the bundled ResNet-20
    assert pipeline.distill_steps(385e6) == 0  # EfficientNet-Lite0
    assert pipeline.distill_steps(385e6, "on") == pipeline.DISTILL_STEPS
    assert pipeline.distill_steps(50e6) == int(pipeline.DISTILL_MACS // (3 * pipeline.DISTILL_BATCH * 50e6))  # fewer
    monkeypatch.setattr(pipeline, "DISTILL_MACS", 1.0)  # nothing fits: skipped on a miss
    _first_check_misses(monkeypatch)
    ran = []
    import onnx_udc.finetune as ft

    monkeypatch.setattr(ft, "distill", lambda *a, **k: ran.append(1))
    said = []
    result = compress(modelzoo.mlp(), CompressSpec(target=Target("output_sqnr", 25.0), calib=feeds()), log=said.append)
    assert not ran and result.distill is None and result.verification.passed
    assert any(line.startswith("distillation skipped:") for line in said)
