"""The command line: the happy path and every bad input the foundation issue lists."""

import struct

import numpy as np
import onnx
import pytest

import modelzoo
from blobs import patch, reseal
from onnx_udc.cli import main
from onnx_udc.graph import decode_nodes


@pytest.fixture
def cnn_file(tmp_path):
    path = tmp_path / "cnn.onnx"
    onnx.save_model(modelzoo.cnn(channels=32), str(path))
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err, code, expected_code):
    assert code == expected_code, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("onnx-udc: error:"), err
    assert "Traceback" not in err


def listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_compress_inspect_decompress(cnn_file, tmp_path, capsys):
    out = tmp_path / "cnn.udc.onnx"
    code, stdout, _ = run(["compress", cnn_file, "-o", out, "--step-rel", "0.2"], capsys)
    assert code == 0 and out.exists()
    assert "conv2.w" in stdout and "file:" in stdout
    code, stdout, _ = run(["inspect", out], capsys)
    assert code == 0 and "scalar+rans" in stdout
    dense = tmp_path / "dense.onnx"
    code, _, _ = run(["decompress", out, "-o", dense], capsys)
    assert code == 0
    model = onnx.load(str(dense))
    onnx.checker.check_model(model)
    assert not decode_nodes(model)


def test_target_bpw_and_conflicting_options(cnn_file, tmp_path, capsys):
    out = tmp_path / "a.onnx"
    assert run(["compress", cnn_file, "-o", out, "--target-bpw", "3", "-q"], capsys)[0] == 0
    code, _, err = run(["compress", cnn_file, "-o", out, "--target-bpw", "3", "--step-rel", "0.1"], capsys)
    assert_one_line_error(err, code, 2)


def test_missing_file(tmp_path, capsys):
    code, _, err = run(["compress", tmp_path / "nope.onnx", "-o", tmp_path / "x.onnx"], capsys)
    assert_one_line_error(err, code, 2)
    assert "no such file" in err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("content", [b"", b"this is not an onnx model\n", bytes(range(256)) * 10])
def test_not_onnx(tmp_path, capsys, content):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    for cmd in (["compress", bad, "-o", tmp_path / "x.onnx"], ["inspect", bad], ["decompress", bad, "-o", tmp_path / "x.onnx"]):
        code, _, err = run(cmd, capsys)
        assert_one_line_error(err, code, 2)
    assert listing(tmp_path) == ["bad.onnx"]


def test_unwritable_output(cnn_file, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for target in (tmp_path / "missing_dir" / "out.onnx", blocker / "out.onnx", tmp_path):
        code, _, err = run(["compress", cnn_file, "-o", target], capsys)
        assert_one_line_error(err, code, 4)
    assert listing(tmp_path) == ["a_file", "cnn.onnx"]


def _corrupt(tmp_path, cnn_file, capsys, mutate, dims_follow=True):
    """The compressed CNN with its first blob's bytes mutated; its dims follow the new length
    (a consistent ONNX tensor whose bytes are a bad blob) unless ``dims_follow`` is False."""
    out = tmp_path / "c.onnx"
    assert run(["compress", cnn_file, "-o", out, "-q", "--step-rel", "0.2"], capsys)[0] == 0
    model = onnx.load(str(out))
    _, init = decode_nodes(model)[0]
    init.raw_data = mutate(init.raw_data)
    if dims_follow:
        init.dims[:] = [len(init.raw_data)]
    bad = tmp_path / "bad.udc.onnx"
    onnx.save_model(model, str(bad))
    return bad


@pytest.mark.parametrize(
    "mutate,word",
    [
        (lambda b: b[: len(b) // 2], "declares"),  # truncated blob
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),  # corrupt payload byte
        (lambda b: patch(b, 4, "H", 7), "version 7"),  # unknown format version
        (lambda b: b"garbage" * 10, "magic"),
    ],
    ids=["truncated", "corrupt", "version", "garbage"],
)
@pytest.mark.parametrize("decoder", ["python", "native"])
def test_corrupt_blob_decompress(cnn_file, tmp_path, capsys, mutate, word, decoder, request):
    if decoder == "native":
        request.getfixturevalue("library")
    bad = _corrupt(tmp_path, cnn_file, capsys, mutate)
    before = listing(tmp_path)
    code, _, err = run(["decompress", bad, "-o", tmp_path / "dense.onnx", "--decoder", decoder], capsys)
    assert_one_line_error(err, code, 3)
    assert word in err
    assert listing(tmp_path) == before  # no half-written output


def test_blob_whose_dims_disagree_with_its_bytes_is_a_model_error(cnn_file, tmp_path, capsys):
    """Stale dims make an invalid ONNX tensor (onnxruntime rejects it too): exit 2, before any
    blob is decoded; the same bytes with consistent dims are a format error (above)."""
    bad = _corrupt(tmp_path, cnn_file, capsys, lambda b: b[: len(b) // 2], dims_follow=False)
    for cmd in (["decompress", bad, "-o", tmp_path / "dense.onnx"], ["inspect", bad]):
        code, _, err = run(cmd, capsys)
        assert_one_line_error(err, code, 2)
        assert "__udc_blob" in err and "raw_data holds" in err
    assert not (tmp_path / "dense.onnx").exists()


def test_corrupt_blob_inspect(cnn_file, tmp_path, capsys):
    bad = _corrupt(tmp_path, cnn_file, capsys, lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    code, _, err = run(["inspect", bad], capsys)
    assert_one_line_error(err, code, 3)


def test_verify_bad_inputs_file(cnn_file, tmp_path, capsys, library):
    out = tmp_path / "c.onnx"
    assert run(["compress", cnn_file, "-o", out, "-q", "--step-rel", "0.2"], capsys)[0] == 0
    code, _, err = run(["verify", cnn_file, out, "--inputs", tmp_path / "missing.npz"], capsys)
    assert_one_line_error(err, code, 2)


def test_verify(cnn_file, tmp_path, capsys, library):
    out = tmp_path / "c.onnx"
    assert run(["compress", cnn_file, "-o", out, "-q", "--step-rel", "0.05"], capsys)[0] == 0
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, input=np.random.default_rng(0).random((16, 1, 28, 28), dtype=np.float32))
    for path in ("fast", "custom-op"):
        code, stdout, err = run(["verify", cnn_file, out, "--inputs", feeds, "--path", path], capsys)
        assert code == 0, err
        assert "logits" in stdout and "%" in stdout


def test_verify_corrupt_blob_is_a_clean_error(cnn_file, tmp_path, capsys, library):
    bad = _corrupt(tmp_path, cnn_file, capsys, lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    for path in ("fast", "custom-op"):
        code, _, err = run(["verify", cnn_file, bad, "--path", path], capsys)
        assert code in (2, 3), err
        assert "CHECKSUM_MISMATCH" in err or "checksum" in err
        assert "Traceback" not in err


def test_verify_inputs_the_model_rejects_are_one_line(cnn_file, tmp_path, capsys, library):
    out = tmp_path / "c.onnx"
    assert run(["compress", cnn_file, "-o", out, "-q", "--step-rel", "0.2"], capsys)[0] == 0
    feeds = tmp_path / "bad.npz"
    np.savez(feeds, input=np.zeros((2, 3, 5, 5), np.float32))  # wrong channels and size
    code, _, err = run(["verify", cnn_file, out, "--inputs", feeds], capsys)
    assert_one_line_error(err, code, 2)
    assert "onnxruntime failed on the verification inputs" in err
