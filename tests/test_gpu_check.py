"""tools/gpu_check.py stays runnable where no GPU is: its dry run on the CPU (the host twin
of the GPU path, CPUExecutionProvider) must pass, and without a GPU the real run must say
so with exit status 2, never pass."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(library, *args):
    env = dict(os.environ, ONNX_UDC_LIBRARY=library)
    return subprocess.run([sys.executable, str(ROOT / "tools" / "gpu_check.py"), *args], env=env,
                          capture_output=True, text=True, timeout=600)


def test_dry_run_on_cpu_passes(library):
    result = _run(library, "--dry-run-on-cpu", "--models", "fmnist", "--repeat", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    import json

    count = len(json.loads((ROOT / "tests" / "golden" / "manifest.json").read_text()))
    assert f"{count}/{count} golden vectors bit-exact" in result.stdout and "ALL CHECKS PASSED" in result.stdout


def test_without_a_gpu_the_check_does_not_pass(library):
    from onnx_udc.native import NativeDecoder

    if NativeDecoder(library).cuda_unavailable_reason() is None:
        pytest.skip("a CUDA device is present")
    result = _run(library, "--models", "")
    assert result.returncode == 2 and "NO GPU CHECK" in result.stdout, result.stdout + result.stderr
