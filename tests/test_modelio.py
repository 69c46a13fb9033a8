"""Model files: atomic writes with fsync, staging folders of killed writers cleaned,
models of 2 GiB and more (proto_size, external data written tensor by tensor), clear
errors for missing or truncated external data."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

import modelzoo
from onnx_udc.errors import ModelError
from onnx_udc.graph import modelio
from onnx_udc.graph.modelio import STAGING_TAG, clean_stale_staging, load_model, proto_size, save_model


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_staging_of_a_dead_writer_is_removed_live_ones_kept(tmp_path):
    dead = tmp_path / f".m.onnx{STAGING_TAG}{_dead_pid()}-abc"
    live = tmp_path / f".m.onnx{STAGING_TAG}{os.getppid()}-def"
    other = tmp_path / ".not-ours"
    for d in (dead, live, other):
        d.mkdir()
        (d / "partial").write_bytes(b"x")
    clean_stale_staging(tmp_path)
    assert not dead.exists() and live.exists() and other.exists()
    save_model(modelzoo.mlp(), tmp_path / "out.onnx")  # a save cleans too, and leaves nothing of its own
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, other.name, "out.onnx"])


def test_stale_staging_reused_pids_and_other_hosts(tmp_path):
    """A live pid that started after its folder was last changed is a reused pid: removed.
    A folder of another machine (a shared folder) is never judged by pids of this one."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        reused = tmp_path / f".m.onnx{STAGING_TAG}{sleeper.pid}@{modelio._HOST}-abc"
        remote = tmp_path / f".m.onnx{STAGING_TAG}{_dead_pid()}@another.host-abc"
        for d in (reused, remote):
            d.mkdir()
        hour_ago = os.stat(reused).st_mtime - 3600
        os.utime(reused, (hour_ago, hour_ago))
        clean_stale_staging(tmp_path)
        assert not reused.exists() and remote.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_failed_save_leaves_nothing(tmp_path, monkeypatch):
    def fail(path, data):
        Path(path).write_bytes(data[:10])  # a partial file in the staging folder
        raise RuntimeError("not an OSError")

    monkeypatch.setattr(modelio, "_write_synced", fail)
    with pytest.raises(RuntimeError):
        save_model(modelzoo.mlp(), tmp_path / "out.onnx")
    assert list(tmp_path.iterdir()) == []


def test_proto_size_matches_bytesize_below_the_limit():
    model = modelzoo.cnn(channels=32)
    assert proto_size(model) == model.ByteSize()


def test_external_write_keeps_the_model_and_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(modelio, "PROTO_LIMIT", 1000)  # pretend the model is over 2 GiB
    model = modelzoo.cnn(channels=32)
    before = model.SerializeToString()
    save_model(model, tmp_path / "big.onnx")
    assert model.SerializeToString() == before  # the caller's model is untouched
    shell = onnx.load(str(tmp_path / "big.onnx"), load_external_data=False)
    offsets = [int({e.key: e.value for e in t.external_data}["offset"]) for t in shell.graph.initializer
               if t.data_location == T.EXTERNAL]
    assert offsets and all(o % modelio.EXTERNAL_ALIGN == 0 for o in offsets)
    x = np.random.default_rng(0).standard_normal((2, *[d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:])).astype(np.float32)
    name = model.graph.input[0].name
    want = ort.InferenceSession(before, providers=["CPUExecutionProvider"]).run(None, {name: x})
    got = ort.InferenceSession(str(tmp_path / "big.onnx"), providers=["CPUExecutionProvider"]).run(None, {name: x})
    for a, b in zip(want, got):
        np.testing.assert_array_equal(a, b)


def _external_model(tmp_path):
    model = modelzoo.cnn(channels=32)
    path = tmp_path / "ext.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="ext.bin", size_threshold=0)
    return path


def test_missing_external_data_is_a_clear_error(tmp_path):
    path = _external_model(tmp_path)
    (tmp_path / "ext.bin").unlink()
    with pytest.raises(ModelError, match="external data .* missing: ext.bin"):
        load_model(path)


def test_truncated_external_data_is_a_clear_error(tmp_path):
    path = _external_model(tmp_path)
    data = (tmp_path / "ext.bin").read_bytes()
    (tmp_path / "ext.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated: ext.bin holds [0-9,]+ of its [0-9,]+ bytes"):
        load_model(path)


def _big_model(path, per_tensor=300_000_000):
    """y = x + a + b: two float32 tensors of ``per_tensor`` elements (2.4 GB in all)."""
    rng = np.random.default_rng(0)
    inits = [nh.from_array(rng.standard_normal(per_tensor, dtype=np.float32), n) for n in ("a", "b")]
    graph = h.make_graph(
        [h.make_node("Add", ["x", "a"], ["s"]), h.make_node("Add", ["s", "b"], ["y"])], "big",
        [h.make_tensor_value_info("x", T.FLOAT, [per_tensor])], [h.make_tensor_value_info("y", T.FLOAT, [per_tensor])],
        inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    save_model(model, path)
    return model


@pytest.mark.slow
def test_models_past_2gib_compress_load_and_decompress(tmp_path):
    """Compress, fast-load and decompress a 2.4 GB model (about 2 minutes, 10 GB of memory)."""
    from onnx_udc.cli import main
    from onnx_udc.load.session import InferenceSession

    src = tmp_path / "big.onnx"
    model = _big_model(src)
    with pytest.raises(Exception, match="serialize"):
        model.ByteSize()  # what upb does: everything here must not depend on it
    assert (tmp_path / "big.onnx.data").stat().st_size > 2 << 30
    out = tmp_path / "big.udc.onnx"
    assert main(["compress", str(src), "-o", str(out), "--step-rel", "0.05", "--coder", "store"]) == 0
    a = nh.to_array(model.graph.initializer[0])
    b = nh.to_array(model.graph.initializer[1])
    del model
    x = np.zeros(a.size, np.float32)
    (y,) = InferenceSession(str(out)).run(None, {"x": x})
    err = y - (a + b)
    assert float(np.sqrt(np.mean(err * err))) < 0.05 * 2
    dense = tmp_path / "dense.onnx"
    assert main(["decompress", str(out), "-o", str(dense)]) == 0
    (y2,) = ort.InferenceSession(str(dense), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_array_equal(y, y2)
