"""Fidelity metrics and the budgets the rate allocation derives from them."""

import math

import numpy as np
import pytest

from onnx_udc.fit import fidelity
from onnx_udc.errors import ConfigError


def logits(n=400, classes=10, seed=0):
    return [[np.random.default_rng(seed).standard_normal((n, classes)) * 3]]


def noisy(ref, d, seed=1):
    """ref plus i.i.d. Gaussian noise of relative power d."""
    rng = np.random.default_rng(seed)
    y = ref[0][0]
    return [[y + rng.standard_normal(y.shape) * math.sqrt(d * float(np.mean(y * y)))]]


def test_sqnr_and_its_budget_agree():
    ref = logits()
    out = noisy(ref, 1e-3)
    m = fidelity.get("sqnr")
    assert m.measure(ref, out) == pytest.approx(30.0, abs=0.3)
    assert m.budget(30.0, ref) == pytest.approx(1e-3)
    assert m.distortion(ref, ref) == 0.0 and m.measure(ref, ref) == math.inf


def test_agreement_margin_model_predicts_gaussian_flips():
    ref = logits(n=4000)
    m = fidelity.get("agreement")
    for d in (1e-3, 1e-2, 5e-2):
        counted = m.measure(ref, noisy(ref, d))
        assert m.predict(d, ref) == pytest.approx(counted, abs=0.02)
    budget = m.budget(0.95, ref)
    assert m.predict(budget, ref) == pytest.approx(0.95, abs=1e-3)
    assert m.budget(0.99, ref) < budget  # stricter target, less noise allowed


def test_cosine_budget_is_first_order_right():
    rng = np.random.default_rng(0)
    ref = [[rng.standard_normal((200, 384))]]
    m = fidelity.get("cosine")
    d = m.budget(0.99, ref)
    assert m.measure(ref, noisy(ref, d)) == pytest.approx(0.99, abs=2e-3)


def test_unknown_metric_lists_the_choices():
    with pytest.raises(ConfigError, match="agreement"):
        fidelity.get("psnr")


def test_non_finite_outputs_count_as_huge_noise():
    ref = logits()
    bad = [[np.full_like(ref[0][0], np.nan)]]
    assert fidelity.get("sqnr").measure(ref, bad) < -100


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_agreement_on_probabilities_uses_the_log_margin_noise():
    """Softmax outputs: the expected agreement comes from the noise of each sample's top-2
    log-probability margin (fidelity.log_margin_agreement), close to the count on many
    samples, never above the count, and it sees noise a count of a few samples misses."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((4000, 4)) * 2.0
    ref = [[_softmax(z)]]
    m = fidelity.get("agreement")
    for noise in (0.05, 0.2, 0.5):
        out = [[_softmax(z + rng.standard_normal(z.shape) * noise)]]
        counted = m.measure(ref, out)
        smooth = m.smooth(ref, out)
        assert smooth <= counted
        assert fidelity.log_margin_agreement(ref, out) == pytest.approx(counted, abs=0.02)
    # 12 samples at a noise that flips 2.6% of 4000 such samples:
    # all 12 agree, the log-margin model still expects the flips
    few = [[_softmax(z[12:24])]]
    out = [[_softmax(z[12:24] + np.random.default_rng(9).standard_normal((12, 4)) * 0.1)]]
    assert m.measure(few, out) == 1.0
    assert m.smooth(few, out) < 0.97
    assert m.smooth(ref, ref) == 1.0
