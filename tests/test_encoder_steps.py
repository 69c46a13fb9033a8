"""tools/encoder_steps.py: the per-step table of the encoder (plain, + feedback, + RDOQ, + distillation)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import encoder_steps as es  # noqa: E402


def _result():
    ok = {"seconds": 10.0, "peak_mb": 100.0, "held_out": "agreement 0.99", "methods": {"scalar": 3, "feedback": 2},
          "distill": None, "bytes": 100, "ratio": 10.0, "metrics": {"accuracy": 0.91}, "value": 0.91, "meets": True}
    missed = {"seconds": 5.0, "peak_mb": 50.0, "missed": "agreement 0.95 < 0.97 on 64 held-out samples"}
    return {"m": {"title": "M", "target": "agreement >= 0.97", "why": "stated", "zoo_metric": "accuracy",
                  "zoo_threshold": 0.9, "original_bytes": 1000,
                  "steps": {"plain rounding": missed, "+ output-aware indices": ok,
                            "+ distillation": dict(ok, meets=False, value=0.89)}}}


def test_table_says_refusals_misses_and_when_distillation_did_not_run():
    text = es.markdown(_result(), "tools/encoder_steps.py --models m", "now", "1.0", "abc1234")
    assert text.splitlines()[2].startswith("Regenerate: `python tools/encoder_steps.py --models m`")
    assert "| plain rounding | refused |" in text
    assert "| + output-aware indices | 10.00x | 0.9100 | yes |" in text
    assert "**no**" in text and "did not run (no held-out miss)" in text


def test_unknown_step_is_a_one_line_error(capsys):
    assert es.main(["--steps", "magic"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: unknown step 'magic'")


@pytest.mark.slow
def test_bundled_model_plain_rounding_step(tmp_path):
    out = tmp_path / "s.md"
    assert es.main(["--models", "fmnist", "--steps", "plain rounding", "--out", str(out)]) == 0
    assert "| plain rounding |" in out.read_text()
