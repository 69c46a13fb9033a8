"""The C fast loader (udc_fast_model_*, udc_session_*): the same rewrite and bytes as the
Python fast loader, and clear errors on bad models."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import modelzoo
from onnx_udc import CompressConfig, ModelError, compress_model
from onnx_udc.load.session import prepare_fast

MODELS = modelzoo.SHAPES


def compressed(name: str) -> onnx.ModelProto:
    model, report = compress_model(MODELS[name](), CompressConfig(min_elements=256, seed=3))
    assert report.tensors
    return model


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("threads", [1, 0])
def test_c_rewrite_equals_python_rewrite(name, threads, native):
    model = compressed(name)
    data = model.SerializeToString()
    rewritten, dense, needs_ops = native.prepare_fast(data, threads=threads)
    py_model, py_dense = prepare_fast(onnx.ModelProto.FromString(data))
    assert onnx.ModelProto.FromString(rewritten) == py_model
    assert list(dense) == list(py_dense)
    for key in dense:
        assert dense[key].dtype == py_dense[key].dtype and dense[key].shape == py_dense[key].shape
        assert dense[key].tobytes() == py_dense[key].tobytes(), key
    assert needs_ops == any(n.domain == "ai.onnx_udc" for n in py_model.graph.node)


def test_plain_model_passes_through(native):
    data = modelzoo.mlp().SerializeToString()
    rewritten, dense, needs_ops = native.prepare_fast(data)
    assert rewritten == data and dense == {} and not needs_ops


def _with_decode_node(blob_init: onnx.TensorProto, inputs=None) -> bytes:
    node = helper.make_node("Decode", inputs if inputs is not None else [blob_init.name], ["w"], domain="ai.onnx_udc")
    graph = helper.make_graph([node, helper.make_node("Identity", ["w"], ["y"])], "g", [],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [blob_init])
    return helper.make_model(graph).SerializeToString()


@pytest.mark.parametrize("data, message", [
    (b"", "no graph"),
    (b"\xff\xff\xff", "varint"),
    (b"\x3a\xff\x01", "declares"),                       # graph field longer than the bytes
    (b"\x0b\x00", "wire type"),                         # a group
    (_with_decode_node(numpy_helper.from_array(np.zeros(4, np.float32), "b")), "not uint8"),
    (_with_decode_node(numpy_helper.from_array(np.zeros(4, np.uint8), "b"), inputs=["missing"]), "no blob initializer"),
    (_with_decode_node(numpy_helper.from_array(np.zeros(4, np.uint8), "b")), "w: "),  # not a blob: TRUNCATED
])
def test_bad_models_are_typed_errors(data, message, native):
    with pytest.raises(Exception) as info:
        native.prepare_fast(data)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_blob_as_external_data(tmp_path, native):
    model = compressed("mlp")
    onnx.save_model(onnx.ModelProto.FromString(model.SerializeToString()), tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="m.data", size_threshold=0)
    data = (tmp_path / "m.onnx").read_bytes()
    with pytest.raises(ModelError, match="external data"):
        native.prepare_fast(data)  # no folder given
    rewritten, dense, _ = native.prepare_fast(data, base_dir=str(tmp_path))
    _, py_dense = prepare_fast(model)
    assert {k: v.tobytes() for k, v in dense.items()} == {k: v.tobytes() for k, v in py_dense.items()}
    (tmp_path / "m.data").write_bytes((tmp_path / "m.data").read_bytes()[:100])
    with pytest.raises(ModelError, match="truncated"):
        native.prepare_fast(data, base_dir=str(tmp_path))


def test_external_location_cannot_leave_the_folder(tmp_path, native):
    blob = TensorProto(name="b", data_type=TensorProto.UINT8, dims=[4], data_location=TensorProto.EXTERNAL)
    entry = blob.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    with pytest.raises(ModelError, match="leaves the model's folder"):
        native.prepare_fast(_with_decode_node(blob), base_dir=str(tmp_path))


def test_the_c_abi_recipe_other_languages_follow(native):
    """What a Java program does with the C ABI (docs/deploy-languages.md: the C functions
    through the FFM API, SessionOptions.addExternalInitializers), done through ctypes: the
    rewritten bytes and the decoded tensors handed to onnxruntime give the Python fast
    loader's outputs exactly. (OrtApi::AddInitializer is no substitute: onnxruntime checks
    a placeholder's data before it would replace it.)"""
    import onnxruntime as ort

    from onnx_udc import InferenceSession

    model = compressed("cnn")
    data = model.SerializeToString()
    rewritten, dense, needs_ops = native.prepare_fast(data)
    assert not needs_ops
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    values = {name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in dense.items()}
    options.add_external_initializers(list(values), list(values.values()))
    session = ort.InferenceSession(rewritten, options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    reference_options = ort.SessionOptions()
    reference_options.intra_op_num_threads = 1
    expected = InferenceSession(model, reference_options).run(None, {"input": x})
    got = session.run(None, {"input": x})
    assert [g.tobytes() for g in got] == [e.tobytes() for e in expected]


def _external_blob(location: str) -> onnx.TensorProto:
    blob = TensorProto(name="b", data_type=TensorProto.UINT8, dims=[4], data_location=TensorProto.EXTERNAL)
    entry = blob.external_data.add()
    entry.key, entry.value = "location", location
    return blob


def test_external_data_must_be_a_regular_file_inside_the_folder(tmp_path, native):
    import os

    folder = tmp_path / "m"
    folder.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"root:x:0:0")
    os.symlink(secret, folder / "link.bin")  # a symlink out of the folder
    with pytest.raises(ModelError, match="resolves outside the model's folder"):
        native.prepare_fast(_with_decode_node(_external_blob("link.bin")), base_dir=str(folder))
    os.mkfifo(folder / "pipe.bin")  # would block a plain open/read
    with pytest.raises(ModelError, match="not a regular file"):
        native.prepare_fast(_with_decode_node(_external_blob("pipe.bin")), base_dir=str(folder))
    (folder / "sub").mkdir()
    with pytest.raises(ModelError, match="not a regular file"):
        native.prepare_fast(_with_decode_node(_external_blob("sub")), base_dir=str(folder))


def test_duplicate_blob_names_are_refused(native):
    blob = numpy_helper.from_array(np.zeros(4, np.uint8), "b")
    data = _with_decode_node(blob)
    model = onnx.ModelProto.FromString(data)
    model.graph.initializer.append(numpy_helper.from_array(np.ones(4, np.uint8), "b"))
    with pytest.raises(ModelError, match="two initializers are named 'b'"):
        native.prepare_fast(model.SerializeToString())


def test_int32_data_blob_in_wire_order(native):
    """A blob stored as int32_data (one value unpacked, then a packed run) decodes as the
    same bytes in raw_data would."""
    model = compressed("mlp")
    init = next(i for i in model.graph.initializer if i.name.endswith("__udc_blob"))
    raw = init.raw_data
    _, dense_raw, _ = native.prepare_fast(model.SerializeToString())
    # hand-made wire bytes: field 5 unpacked (varint) for byte 0, then field 5 packed for the rest
    def varint(v):
        out = bytearray()
        while v >= 0x80:
            out.append((v & 0x7F) | 0x80)
            v >>= 7
        out.append(v)
        return bytes(out)

    packed = b"".join(varint(b) for b in raw[1:])
    extra = bytes([5 << 3 | 0]) + varint(raw[0]) + bytes([5 << 3 | 2]) + varint(len(packed)) + packed
    init.ClearField("raw_data")
    init.MergeFromString(extra)
    assert list(init.int32_data) == list(raw)
    _, dense, _ = native.prepare_fast(model.SerializeToString())
    assert {k: v.tobytes() for k, v in dense.items()} == {k: v.tobytes() for k, v in dense_raw.items()}


def test_decode_output_that_names_an_initializer_is_refused(native):
    """Found by the fast fuzz target: the placeholder would be a second initializer of that
    name (and the rewrite no longer a fixed point). Both loaders refuse it."""
    from onnx_udc.load.session import prepare_fast as py_prepare

    model = onnx.ModelProto.FromString(_with_decode_node(numpy_helper.from_array(np.zeros(4, np.uint8), "b")))
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(4, np.float32), "w"))
    with pytest.raises(ModelError, match="already defines"):
        native.prepare_fast(model.SerializeToString())
    with pytest.raises(ModelError, match="already defines"):
        py_prepare(model)
