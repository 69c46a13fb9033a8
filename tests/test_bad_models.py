"""Every bad model and bad output folder is a one-line error with its documented exit code,
the input is never modified and nothing is left behind (the table: bad_model_cases.CASES,
also run by tools/bad_models.py into docs/results/bad_models.md)."""

import numpy as np
import onnx
import pytest

from bad_model_cases import CASES, nested_outer_initializer, problems, run_case
from onnx_udc.cli import main


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_model(case, tmp_path, library):
    outcomes = run_case(case, tmp_path)
    assert [o.command for o in outcomes] == list(case.expect)
    failures = {f"{o.command}: {' '.join(o.argv)}": problems(case, o) for o in outcomes}
    assert not any(failures.values()), {k: v for k, v in failures.items() if v}


def test_nested_outer_initializer_compresses_and_runs_the_same(tmp_path, capsys, library):
    """The valid case of the table, checked further: the weight two scopes up is compressed and
    the compressed model gives the original's outputs within the quantization error, on both
    branches."""
    from onnx_udc.graph import decode_nodes
    from onnx_udc.load.session import InferenceSession

    src, out = tmp_path / "nested.onnx", tmp_path / "nested.udc.onnx"
    onnx.save_model(nested_outer_initializer(), str(src))
    assert main(["compress", str(src), "-o", str(out), "-q", "--step-rel", "0.01"]) == 0, capsys.readouterr().err
    assert len(decode_nodes(onnx.load(str(out)))) == 1
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    for cond in (True, False):
        feeds = {"cond": np.array(cond), "x": x}
        want = InferenceSession(str(src)).run(None, feeds)[0]
        for fast in (True, False):
            got = InferenceSession(str(out), fast=fast).run(None, feeds)[0]
            np.testing.assert_allclose(got, want, atol=0.05 * np.abs(want).max())
