"""The default target-driven pipeline reaches end-to-end distillation (onnx_udc.finetune)
when torch is installed, and says clearly what happens when it is not."""

from __future__ import annotations

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


def test_with_torch_the_default_distills_before_the_held_out_check():
    pytest.importorskip("torch")
    result = compress(modelzoo.mlp(), CompressSpec(target=Target("output_sqnr", 25.0), calib=feeds()))
    assert result.distill is not None and "distillation" in result.seconds
    assert result.verification.passed
