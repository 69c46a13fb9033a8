"""The encode backends (encoder.backends): local threads and processes for any worker count
and a local Ray instance write byte-identical models; a missing Ray is a one-line
ConfigError. The Ray tests skip where Ray is not installed (CI)."""

import importlib.util
from dataclasses import replace

import numpy as np
import pytest

import modelzoo
from onnx_udc.encoder import CompressConfig, TensorPlan, compress_model
from onnx_udc.encoder import backends
from onnx_udc.errors import ConfigError
from onnx_udc.graph.modelio import save_model
from onnx_udc.quantizers.scalar import ScalarConfig

# four weights of 64 to 18k elements
FIXED = CompressConfig(scalar=ScalarConfig(step_rel=0.05), coder="brotli", min_elements=64)


def _bytes(model, config, tmp_path, name) -> bytes:
    out, report = compress_model(model, config)
    save_model(out, tmp_path / name)
    return (tmp_path / name).read_bytes(), report


def test_local_backends_write_the_same_bytes_for_any_worker_count(tmp_path):
    model = modelzoo.cnn(channels=32)
    want, report = _bytes(model, replace(FIXED, threads=1), tmp_path, "t1.onnx")
    assert len(report.tensors) == 4
    for i, config in enumerate([replace(FIXED, threads=2), replace(FIXED, threads=4),
                                replace(FIXED, backend="processes", threads=2)]):
        got, got_report = _bytes(model, config, tmp_path, f"{i}.onnx")
        assert got == want, config
        assert got_report == report


def test_an_unknown_backend_lists_the_choices():
    with pytest.raises(ConfigError, match=r"unknown backend 'spark'; choose one of \['threads', 'processes', 'ray'\]"):
        CompressConfig(backend="spark")
    with pytest.raises(ConfigError, match="takes no address"):
        CompressConfig(backend="threads", backend_address="auto")


def test_missing_ray_is_a_one_line_config_error(monkeypatch, tmp_path, capsys):
    from onnx_udc.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install onnx-udc\[ray\]"):
        CompressConfig(backend="ray")
    src = tmp_path / "m.onnx"
    save_model(modelzoo.cnn(), src)
    code = main(["compress", str(src), "-o", str(tmp_path / "out.onnx"), "--step-rel", "0.05", "--backend", "ray"])
    err = capsys.readouterr().err
    assert code == ConfigError.exit_code and err.count("\n") == 1 and "pip install onnx-udc[ray]" in err
    assert not (tmp_path / "out.onnx").exists()


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="warning")
    yield ray
    ray.shutdown()


def test_ray_writes_the_bytes_of_a_local_run(ray_local, tmp_path):
    model = modelzoo.cnn(channels=32)
    want, report = _bytes(model, replace(FIXED, threads=1), tmp_path, "local.onnx")
    for threads in (None, 1):
        got, got_report = _bytes(model, replace(FIXED, backend="ray", threads=threads), tmp_path, "ray.onnx")
        assert got == want
        assert got_report == report


def test_ray_cli_and_a_typed_error_from_a_worker(ray_local, tmp_path, capsys):
    from onnx_udc.cli import main

    src = tmp_path / "m.onnx"
    save_model(modelzoo.cnn(channels=32), src)
    for backend, out in (("threads", "a.onnx"), ("ray", "b.onnx")):
        assert main(["compress", str(src), "-o", str(tmp_path / out), "--step-rel", "0.05", "-q",
                     "--backend", backend]) == 0
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    # a worker's typed error comes back as that error, naming the tensor
    job = backends.EncodeJob("w", np.ones(8, np.float32), TensorPlan("w", "raw"), "no-such-coder")
    result = ray_local.get(ray_local.remote(backends.run_job).remote(job))
    assert isinstance(result, ConfigError) and str(result).startswith("w: ")

