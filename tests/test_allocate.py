"""Rate allocation: targets are met, sensitive tensors get finer steps, the noise model holds."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import modelzoo
from onnx_udc.fit import calib as calib_mod
from onnx_udc import quantizers
from onnx_udc.fit import fidelity
from onnx_udc.fit.allocate import Target, allocate
from onnx_udc.cli import main
from onnx_udc.errors import ConfigError
from onnx_udc import CompressConfig, decompress_model


def feeds(n=64, dim=64, seed=1):
    rng = np.random.default_rng(seed)
    return [{"x": rng.standard_normal((16, dim)).astype(np.float32)} for _ in range(n // 16)]


def cnn_feeds(n=64, seed=1):
    rng = np.random.default_rng(seed)
    return [{"input": rng.standard_normal((16, 1, 28, 28)).astype(np.float32)} for _ in range(n // 16)]


def run_model(model, batches):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [sess.run(None, b) for b in batches]


def real_outputs(alloc, batches):
    """Outputs of the compressed model after a full decode (Python reference decoder)."""
    return run_model(decompress_model(alloc.model), batches)


def test_min_sqnr_is_met_and_predicted():
    model = modelzoo.two_branch()
    batches = feeds()
    alloc = allocate(model, Target("sqnr", 30.0), calib=batches)
    ref = run_model(model, batches)
    measured = fidelity.get("sqnr").measure(ref, real_outputs(alloc, batches))
    assert measured >= 30.0
    assert measured == pytest.approx(alloc.measured_metric, abs=1e-6)  # the search saw the real decoded weights
    # The additive noise model predicts the real distortion within a factor of 1.5.
    assert 1 / 1.5 < alloc.predicted_distortion / alloc.measured_distortion < 1.5
    assert alloc.model_bytes < model.ByteSize()


def test_quiet_branch_gets_a_coarser_step():
    alloc = allocate(modelzoo.two_branch(quiet=0.01), Target("sqnr", 35.0), calib=feeds())
    plan = {t.name: t for t in alloc.tensors}
    assert plan["C"].sensitivity < plan["A"].sensitivity / 100
    assert plan["C"].step_rel > 4 * plan["A"].step_rel
    assert plan["C"].bits < plan["A"].bits - 2


def test_target_ratio_is_met_with_best_effort():
    model = modelzoo.cnn(channels=32)
    alloc = allocate(model, Target("ratio", 6.0), calib=cnn_feeds())
    assert alloc.ratio >= 6.0
    assert alloc.model.ByteSize() == alloc.model_bytes
    # Close to the budget: a size target spends what it is given.
    assert alloc.ratio < 6.0 * 1.15


def test_target_size_unreachable_is_a_config_error():
    model = modelzoo.cnn(channels=32)
    with pytest.raises(ConfigError, match="cannot reach"):
        allocate(model, Target("size", 200), calib=cnn_feeds())


def test_agreement_and_cosine_targets():
    model = modelzoo.cnn(channels=32)
    batches = cnn_feeds(128)
    alloc = allocate(model, Target("agreement", 0.95), calib=batches)
    assert alloc.smoothed_metric >= 0.95
    assert alloc.model_bytes < model.ByteSize() / 3
    mlp = modelzoo.two_branch()
    alloc = allocate(mlp, Target("cosine", 0.999), calib=feeds())
    ref = run_model(mlp, feeds())
    assert fidelity.get("cosine").measure(ref, real_outputs(alloc, feeds())) >= 0.999


def test_a_stricter_target_costs_more_bytes():
    model = modelzoo.two_branch()
    sizes = [allocate(model, Target("sqnr", db), calib=feeds()).model_bytes for db in (20.0, 30.0, 40.0)]
    assert sizes[0] < sizes[1] < sizes[2]


def test_constants_and_subgraphs_are_handled():
    model = modelzoo.constants()
    rng = np.random.default_rng(0)
    batches = [{"cond": np.array(True), "x": rng.standard_normal((8, 64)).astype(np.float32)} for _ in range(4)]
    alloc = allocate(model, Target("sqnr", 30.0), calib=batches)
    assert {t.name for t in alloc.tensors} == {"W1", "W2", "W3"}  # W2 lives in the If branch: probed too
    assert alloc.measured_metric >= 30.0


def test_bad_targets():
    for kind, value in [("ratio", 0.5), ("size", -1), ("agreement", 1.5), ("cosine", 2.0), ("psnr", 3.0)]:
        with pytest.raises(ConfigError):
            Target(kind, value)


# ---- calibration inputs -------------------------------------------------------------


def test_synthesized_inputs_follow_the_spec():
    model = modelzoo.cnn()
    cs = calib_mod.synthesize(model, samples=20, batch=8)
    assert cs.synthetic and cs.samples == 20
    assert [b["input"].shape for b in cs.batches] == [(8, 1, 28, 28), (8, 1, 28, 28), (4, 1, 28, 28)]


def test_synthesized_token_ids_stay_inside_the_vocabulary():
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    table = nh.from_array(np.ones((50, 8), np.float32), "emb")
    graph = h.make_graph([h.make_node("Gather", ["emb", "ids"], ["y"])], "g",
                         [h.make_tensor_value_info("ids", T.INT64, ["N", "T"]),
                          h.make_tensor_value_info("attention_mask", T.INT64, ["N", "T"])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)], [table])
    cs = calib_mod.synthesize(h.make_model(graph), samples=4)
    ids = cs.batches[0]["ids"]
    assert ids.shape == (4, calib_mod.SYNTHETIC_SEQUENCE) and ids.min() >= 0 and ids.max() < 50
    assert np.all(cs.batches[0]["attention_mask"] == 1)


def test_npz_calibration(tmp_path):
    model = modelzoo.two_branch()
    path = tmp_path / "calib.npz"
    np.savez(path, x=np.random.default_rng(0).standard_normal((40, 64)).astype(np.float64))
    cs = calib_mod.calibration_set(model, path, samples=32)
    assert not cs.synthetic and cs.samples == 32 and cs.batches[0]["x"].dtype == np.float32
    np.savez(tmp_path / "wrong.npz", y=np.zeros((4, 64), np.float32))
    with pytest.raises(ConfigError, match="lack model input"):
        calib_mod.calibration_set(model, tmp_path / "wrong.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ConfigError, match="not a readable"):
        calib_mod.calibration_set(model, tmp_path / "text.npz")


def test_reader_calibration_checks_batches():
    model = modelzoo.two_branch()
    with pytest.raises(ConfigError, match="dict"):
        calib_mod.calibration_set(model, [np.zeros(3)])
    with pytest.raises(ConfigError, match="yielded no batches"):
        calib_mod.calibration_set(model, [])


# ---- the command line ---------------------------------------------------------------


def test_cli_allocation(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save_model(modelzoo.two_branch(), str(src))
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32))
    out, plan = tmp_path / "m.udc.onnx", tmp_path / "plan.json"
    code = main(["compress", str(src), "-o", str(out), "--min-sqnr", "30", "--calib", str(tmp_path / "calib.npz"),
                 "--plan-out", str(plan)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "rate allocation" in captured.out and "warning" not in captured.err
    data = json.loads(plan.read_text())
    assert data["target"] == {"kind": "sqnr", "value": 30.0} and len(data["tensors"]) == 3
    assert data["measured_metric"] >= 30.0 and out.stat().st_size == data["model_bytes"]


def test_cli_allocation_without_calibration_warns(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save_model(modelzoo.two_branch(), str(src))
    code = main(["compress", str(src), "-o", str(tmp_path / "o.onnx"), "--target-ratio", "4", "-q"])
    err = capsys.readouterr().err
    assert code == 0 and "synthesized" in err


@pytest.mark.parametrize("extra", [
    ["--min-sqnr", "30", "--target-ratio", "4"],
    ["--min-sqnr", "30", "--step-rel", "0.1"],
    ["--calib", "c.npz"],
    ["--min-agreement", "3"],
])
def test_cli_rejects_bad_combinations(tmp_path, capsys, extra):
    src = tmp_path / "m.onnx"
    onnx.save_model(modelzoo.two_branch(), str(src))
    code = main(["compress", str(src), "-o", str(tmp_path / "o.onnx"), *extra])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("onnx-udc: error:"), err
    assert not (tmp_path / "o.onnx").exists()


def test_cli_bad_calibration_file(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save_model(modelzoo.two_branch(), str(src))
    np.savez(tmp_path / "c.npz", nope=np.zeros((4, 64), np.float32))
    code = main(["compress", str(src), "-o", str(tmp_path / "o.onnx"), "--min-sqnr", "30", "--calib", str(tmp_path / "c.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "lack model input" in err
    assert not (tmp_path / "o.onnx").exists()


@pytest.mark.parametrize("quantizer", quantizers.lattices())
def test_allocation_works_with_every_lattice(quantizer):
    model = modelzoo.two_branch()
    batches = feeds()
    alloc = allocate(model, Target("sqnr", 30.0), calib=batches, config=CompressConfig(quantizer=quantizer))
    ref = run_model(model, batches)
    assert fidelity.get("sqnr").measure(ref, real_outputs(alloc, batches)) == pytest.approx(alloc.measured_metric, abs=1e-6)
    assert alloc.measured_metric >= 30.0
    from onnx_udc.graph import decode_nodes
    from onnx_udc.format import parse_blob

    headers = [parse_blob(numpy_helper_bytes(blob))[0] for _, blob in decode_nodes(alloc.model)]
    assert headers and all(h.quantizer == quantizers.by_name(quantizer).id for h in headers)
    # MatMul B [K, N] weights are grouped along K: axis order (1, 0) leads the params.
    assert all(h.params[:2] == bytes([1, 0]) for h in headers)


def numpy_helper_bytes(tensor):
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor).tobytes()


def test_npz_inputs_the_same_for_every_sample(tmp_path):
    """A scalar input (a sample rate, a gain) and a state without the sample axis are fed
    whole to every batch; only x carries samples."""
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh

    rng = np.random.default_rng(0)
    w = nh.from_array((rng.standard_normal((64, 64)) / 8).astype(np.float32), "W")
    graph = h.make_graph(
        [h.make_node("MatMul", ["x", "W"], ["t"]), h.make_node("Mul", ["t", "gain"], ["u"]),
         h.make_node("Add", ["u", "state"], ["y"])], "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["N", 64]), h.make_tensor_value_info("gain", T.FLOAT, []),
         h.make_tensor_value_info("state", T.FLOAT, [1, 64])],
        [h.make_tensor_value_info("y", T.FLOAT, ["N", 64])], [w])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=9)
    path = tmp_path / "c.npz"
    np.savez(path, x=rng.standard_normal((32, 64)).astype(np.float32), gain=np.float32(2.0),
             state=rng.standard_normal((1, 64)).astype(np.float32))
    from onnx_udc.fit.calib import calibration_set

    calib = calibration_set(model, path, 64)
    assert calib.samples == 32 and "gain, state" in calib.source
    assert all(b["gain"].shape == () and b["state"].shape == (1, 64) for b in calib.batches)
    alloc = allocate(model, Target("sqnr", 30.0), calib=calib)
    assert alloc.measured_metric >= 30.0


def test_methods_chosen_per_tensor_never_grow_the_file():
    """--quantizer auto: after the allocation each tensor may move to a lattice at the step of
    equal noise power, only where the coder really stores it in fewer bytes."""
    model = modelzoo.two_branch()
    base = allocate(model, Target("sqnr", 30.0), calib=feeds())
    auto = allocate(model, Target("sqnr", 30.0), calib=feeds(), alternatives=quantizers.lattices())
    assert auto.model_bytes <= base.model_bytes
    methods = {t.name: t.quantizer for t in auto.tensors}
    assert set(methods.values()) <= {"exact", "scalar", *quantizers.lattices()}
    headers = {n: h for n, h in _headers(auto.model).items()}
    for name, method in methods.items():
        if method not in ("exact",):
            assert headers[name].quantizer == quantizers.by_name(method).id
    assert abs(auto.predicted_distortion - base.predicted_distortion) <= 1e-12 + 1e-9 * base.predicted_distortion


def _headers(model):
    from onnx_udc.format import parse_blob
    from onnx_udc.graph import blob_bytes, decode_nodes

    return {node.output[0]: parse_blob(blob_bytes(init))[0] for node, init in decode_nodes(model)}


def test_a_python_callable_as_the_fidelity_metric():
    """A metric given as a callable (API) drives the allocation and the held-out check."""
    from onnx_udc.pipeline import CompressSpec, compress

    def similarity(reference, outputs):  # 1 - relative squared error of the first output
        num = sum(float(np.sum((o[0] - r[0]) ** 2)) for r, o in zip(reference, outputs))
        den = sum(float(np.sum(r[0] ** 2)) for r in reference)
        return 1.0 - num / den

    fidelity.from_callable("my_similarity", similarity)
    result = compress(modelzoo.two_branch(), CompressSpec(target=Target("my_similarity", 0.999), calib=feeds()))
    v = result.verification
    assert v.metric == "my_similarity" and v.passed and v.value >= 0.999 and v.samples == 16


def test_cli_outputs_must_exist(tmp_path, capsys):
    src = tmp_path / "m.onnx"
    onnx.save_model(modelzoo.two_branch(), str(src))
    np.savez(tmp_path / "c.npz", x=np.zeros((8, 64), np.float32))
    code = main(["compress", str(src), "-o", str(tmp_path / "o.onnx"), "--calib", str(tmp_path / "c.npz"),
                 "--outputs", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "--outputs" in err and err.count("\n") == 1 and not (tmp_path / "o.onnx").exists()


def test_held_out_samples_span_the_whole_file(tmp_path):
    """A class-sorted file: the calibration read is spread over it and every k-th sample is
    held out, so neither the fit nor the check sees only its first classes."""
    from onnx_udc.fit.calib import calibration_set, split_holdout

    model = modelzoo.two_branch()
    x = np.repeat(np.arange(10, dtype=np.float32), 100)[:, None] * np.ones((1, 64), np.float32)  # 10 classes x 100
    np.savez(tmp_path / "sorted.npz", x=x)
    calib = calibration_set(model, tmp_path / "sorted.npz", 64)
    seen = np.concatenate([b["x"][:, 0] for b in calib.batches])
    assert calib.samples == 64 and set(seen) == set(range(10))
    fit, held = split_holdout(calib)
    held_classes = np.concatenate([b["x"][:, 0] for b in held.batches])
    assert held.samples == 16 and fit.samples == 48 and len(set(held_classes)) >= 8


def test_output_sqnr_weighs_every_channel_of_a_grid():
    """A detection-like output [N, C, A]: large box rows and small score rows; noise on the
    scores alone must show, though it is nothing beside the boxes' power."""
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 6, 50))
    ref[:, :4] *= 300.0  # boxes in pixels
    ref[:, 4:] *= 0.05  # class scores
    noisy = ref.copy()
    noisy[:, 4:] += 0.05 * rng.standard_normal((2, 2, 50))  # scores at ~0 dB
    m = fidelity.get("output_sqnr")
    assert fidelity.get("sqnr").measure([[ref]], [[noisy]]) > 60  # the whole-output SQNR sees nothing
    assert m.measure([[ref]], [[noisy]]) < 5  # the per-channel one does


def test_npz_of_whole_feeds_for_a_stateful_model(tmp_path):
    """Arrays with one axis more than the inputs: a sequence of whole feeds (a state whose batch
    is axis 1 cannot be cut along axis 0); fitting and the held-out check keep feeds whole."""
    from onnx import TensorProto as T
    from onnx import helper as h
    from onnx import numpy_helper as nh
    from onnx_udc.fit.calib import calibration_set, split_holdout
    from onnx_udc.pipeline import CompressSpec, compress

    rng = np.random.default_rng(0)
    w = nh.from_array((rng.standard_normal((64, 64)) / 8).astype(np.float32), "W")
    idx = nh.from_array(np.array(0, np.int64), "zero")
    graph = h.make_graph(
        [h.make_node("MatMul", ["x", "W"], ["t"]), h.make_node("Gather", ["state", "zero"], ["s0"], axis=0),
         h.make_node("Add", ["t", "s0"], ["y"])], "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["B", 64]), h.make_tensor_value_info("state", T.FLOAT, [2, "B", 64])],
        [h.make_tensor_value_info("y", T.FLOAT, ["B", 64])], [w, idx])
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=9)
    np.savez(tmp_path / "feeds.npz", x=rng.standard_normal((12, 4, 64)).astype(np.float32),
             state=(0.1 * rng.standard_normal((12, 2, 4, 64))).astype(np.float32))
    calib = calibration_set(model, tmp_path / "feeds.npz", 64)
    assert calib.whole_feeds and len(calib.batches) == 12 and calib.batches[0]["state"].shape == (2, 4, 64)
    fit, held = split_holdout(calib)
    assert len(held.batches) == 3 and all(b["state"].shape == (2, 4, 64) for b in fit.batches + held.batches)
    result = compress(model, CompressSpec(target=Target("output_sqnr", 30.0), calib=calib))
    assert result.verification.passed and result.verification.samples == 12


def test_small_held_out_sets_are_said_to_be_small():
    from onnx_udc.fit.check import Verification, agreement_lower_bound

    assert abs(agreement_lower_bound(16, 16) - 0.05 ** (1 / 16)) < 1e-6  # all agree: p^n = 0.05
    v = Verification("agreement", 0.99, 1.0, 16, False)
    assert v.passed and v.lower_bound < 0.99 and "299 held-out samples" in v.caveat()
    assert Verification("agreement", 0.99, 1.0, 400, False).caveat() is None
    assert 0.985 < agreement_lower_bound(1995, 2000) < 0.997  # large held-out sets (no overflow)
    assert Verification("sqnr", 30.0, 31.0, 4, False).caveat() is None


def test_held_out_agreement_needs_the_model_value_and_a_count_consistent_with_it():
    from onnx_udc.fit.check import Verification

    def v(value, agree, n=64, target=0.99):
        return Verification("agreement", target, value, n, False, counted=agree / n)

    assert v(0.995, 63).passed  # one flip in 64 is consistent with 0.99 (upper 95% bound above it)
    assert not v(0.985, 64).passed  # the margin model's value below the target
    bad = v(0.995, 58)  # 6 flips in 64: significantly below 0.99, whatever the model says
    assert bad.upper_bound < 0.99 and not bad.passed and "significantly below" in bad.describe()
    assert "63/64 agree" in v(0.995, 63).describe()


def test_output_sqnr_on_sequences_of_varying_length():
    """[N, T, C] with T varying per batch (text recognition): no per-channel split, no crash."""
    rng = np.random.default_rng(1)
    ref = [[rng.standard_normal((2, t, 7))] for t in (40, 25)]
    out = [[r[0] + 1e-3 * rng.standard_normal(r[0].shape)] for r in ref]
    assert 50 < fidelity.get("output_sqnr").measure(ref, out) < 70


def test_held_out_split_of_batches_with_different_shapes():
    """Token batches padded to different lengths (sentences): the split never stacks across batches."""
    from onnx_udc.fit.calib import CalibrationSet, split_holdout

    batches = [{"ids": np.zeros((8, n), np.int64), "mask": np.ones((8, n), np.int64)} for n in (12, 30, 7, 19)]
    fit, held = split_holdout(CalibrationSet(batches, False, "t"))
    assert fit.samples == 24 and held.samples == 8
    assert {b["ids"].shape[1] for b in held.batches} == {12, 30, 7, 19}
