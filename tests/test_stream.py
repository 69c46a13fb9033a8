"""Compression from external data a tensor at a time: deferred tensors (modelio.load_model
with defer_external) give the bytes of a model loaded whole, for the loader, proto_size,
save_model, compress_model and the CLI; a slow test bounds the peak memory."""

import os
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import numpy_helper as nh

import modelzoo
from onnx_udc.encoder import CompressConfig, compress_model
from onnx_udc.errors import ModelError
from onnx_udc.graph import modelio
from onnx_udc.graph.modelio import (DEFERRED_KEY, is_deferred, load_deferred, load_model, proto_size, save_model,
                                    tensor_array)
from onnx_udc.quantizers.scalar import ScalarConfig

FIXED = CompressConfig(scalar=ScalarConfig(step_rel=0.05))  # the CLI default (coder auto)


def _model():
    """The test CNN with float16 and int64 initializers besides its float32 weights."""
    model = modelzoo.cnn(channels=32)
    rng = np.random.default_rng(1)
    model.graph.initializer.append(nh.from_array(rng.standard_normal(4096).astype(np.float16), "spare16"))
    model.graph.initializer.append(nh.from_array(np.arange(600, dtype=np.int64), "spare64"))
    return model


def _external(tmp_path, model=None, name="ext.onnx"):
    path = tmp_path / name
    onnx.save_model(model or _model(), str(path), save_as_external_data=True, location=name + ".bin",
                    size_threshold=0)
    return path


def test_deferred_tensors_read_as_loaded(tmp_path):
    path = _external(tmp_path)
    whole = load_model(path)
    lazy = load_model(path, defer_external=True)
    deferred = [t.name for t in lazy.graph.initializer if is_deferred(t)]
    assert {"conv2.w", "spare16", "spare64"} <= set(deferred)
    assert "fc.b" not in deferred  # 40 bytes: read at load time
    by_name = {t.name: t for t in whole.graph.initializer}
    for tensor in lazy.graph.initializer:
        got, want = tensor_array(tensor), nh.to_array(by_name[tensor.name])
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert proto_size(lazy) == proto_size(whole) == whole.ByteSize()
    assert load_deferred(lazy).SerializeToString() == whole.SerializeToString()


def test_saving_a_deferred_model_writes_the_loaded_bytes(tmp_path, monkeypatch):
    path = _external(tmp_path)
    save_model(load_model(path), tmp_path / "whole.onnx")
    save_model(load_model(path, defer_external=True), tmp_path / "lazy.onnx")  # streamed from the map
    assert (tmp_path / "lazy.onnx").read_bytes() == (tmp_path / "whole.onnx").read_bytes()
    monkeypatch.setattr(modelio, "PROTO_LIMIT", 1000)  # external output: the deferred bytes copied a tensor at a time
    for folder, defer in (("whole", False), ("lazy", True)):
        (tmp_path / folder).mkdir()
        save_model(load_model(path, defer_external=defer), tmp_path / folder / "m.onnx")
    for name in ("m.onnx", "m.onnx.data"):
        assert (tmp_path / "lazy" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()


@pytest.mark.parametrize("build", [modelzoo.cnn, modelzoo.mlp, modelzoo.qdq, _model])
def test_streamed_serialisation_is_serialize_to_string(tmp_path, build):
    model = build()
    model.metadata_props.add(key="k", value="v")
    model.graph.doc_string = "graph doc"
    assert modelio._write_streamed(model, tmp_path / "s.onnx")
    assert (tmp_path / "s.onnx").read_bytes() == model.SerializeToString()


def test_compress_from_external_data_is_byte_identical(tmp_path):
    path = _external(tmp_path)
    whole, report_whole = compress_model(load_model(path), FIXED)
    lazy, report_lazy = compress_model(load_model(path, defer_external=True), FIXED)
    save_model(whole, tmp_path / "a.onnx")
    save_model(lazy, tmp_path / "b.onnx")
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
    assert report_lazy == report_whole
    assert not any(is_deferred(t) for t in onnx.load(str(tmp_path / "b.onnx")).graph.initializer)


def test_cli_compress_from_external_data_matches_a_whole_load(tmp_path):
    from onnx_udc.cli import main

    ext = _external(tmp_path)
    argv = ["compress", str(ext), "-o", str(tmp_path / "cli.onnx"), "--step-rel", "0.05", "-q"]
    assert main(argv) == 0
    save_model(compress_model(load_model(ext), FIXED)[0], tmp_path / "api.onnx")
    assert (tmp_path / "cli.onnx").read_bytes() == (tmp_path / "api.onnx").read_bytes()


def test_bad_external_data_is_still_a_clear_error(tmp_path):
    path = _external(tmp_path)
    data = (tmp_path / "ext.onnx.bin").read_bytes()
    (tmp_path / "ext.onnx.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        load_model(path, defer_external=True)
    (tmp_path / "ext.onnx.bin").unlink()
    with pytest.raises(ModelError, match="missing"):
        load_model(path, defer_external=True)


def test_a_wrong_length_is_reported_as_for_a_loaded_model(tmp_path):
    path = _external(tmp_path)
    model = onnx.load(str(path), load_external_data=False)
    w = next(t for t in model.graph.initializer if t.name == "conv2.w")
    for entry in w.external_data:
        if entry.key == "length":
            entry.value = str(int(entry.value) - 4)
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ModelError) as whole:
        load_model(path)
    with pytest.raises(ModelError) as lazy:
        load_model(path, defer_external=True)
    assert str(lazy.value) == str(whole.value) and "raw_data holds" in str(whole.value)


def test_a_files_own_deferred_key_reads_nothing(tmp_path):
    """A model file cannot make the loader read another file: the key is ours alone."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(1024, dtype=np.float32).tobytes())
    model = _model()
    w = next(t for t in model.graph.initializer if t.name == "conv2.w")
    for key, value in (("location", str(secret)), ("offset", "0"), ("length", "4096"), (DEFERRED_KEY, "1")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    path = tmp_path / "m.onnx"
    path.write_bytes(model.SerializeToString())
    loaded = load_model(path, defer_external=True)
    tensor = next(t for t in loaded.graph.initializer if t.name == "conv2.w")
    assert not is_deferred(tensor)
    np.testing.assert_array_equal(tensor_array(tensor), nh.to_array(next(t for t in _model().graph.initializer
                                                                         if t.name == "conv2.w")))


def _rss_child(argv) -> float:
    """Peak RSS (MiB) of one child process."""
    code = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1]) / 1024


@pytest.mark.slow
def test_compress_from_external_data_in_bounded_memory(tmp_path):
    """A 256 MiB external-data model (4 x 64 MiB weights) compresses within its size plus a
    fixed overhead (614 MiB measured, docs/results/scale.md), not the ~3x the model a whole
    load cost (3,161 MiB for 1 GiB)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
    from bench_scale import external_mlp

    src = tmp_path / "m.onnx"
    weights = external_mlp(src, 4096, 4)
    cli = [sys.executable, "-m", "onnx_udc.cli"]
    peak = _rss_child([*cli, "compress", str(src), "-o", str(tmp_path / "out.onnx"), "--step-rel", "0.05", "-q",
                       "--threads", "2"])
    assert peak < weights / 2**20 + 460, f"peak RSS {peak:.0f} MiB for {weights / 2**20:.0f} MiB of weights"


def test_unknown_fields_are_serialised_whole(tmp_path, monkeypatch):
    """A model or graph field this protobuf does not know cannot be split: sized and written whole."""
    monkeypatch.setattr(modelio, "STREAM_MIN_BYTES", 0)
    model = modelzoo.cnn()
    model.graph.MergeFromString(b"\xf8\x07\x01")  # field 127, varint 1
    assert not modelio._write_streamed(model, tmp_path / "s.onnx")
    assert proto_size(model) == model.ByteSize()
    save_model(model, tmp_path / "m.onnx")
    assert (tmp_path / "m.onnx").read_bytes() == model.SerializeToString()


def test_proto_size_sums_parts_exactly(tmp_path):
    for build in (modelzoo.cnn, modelzoo.mlp, modelzoo.qdq, _model):
        model = build()
        assert proto_size(model) == model.ByteSize()
