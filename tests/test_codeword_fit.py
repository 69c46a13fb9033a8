"""Data-driven codeword tables (onnx_udc.fit.tables): the least squares, a real layer, both decoders."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from onnx_udc import quantizers
from onnx_udc.fit import tables as codeword_fit
from onnx_udc.codec import decode_blob, dequantize, pack, quantize
from onnx_udc.errors import ConfigError
from onnx_udc.format import parse_blob
from onnx_udc.format.symbols import unzigzag
from onnx_udc.graph.layers import axis_order
from onnx_udc.quantizers import codewords
from onnx_udc.quantizers.lattice import LatticeConfig

FMNIST = Path(__file__).resolve().parents[1] / "models" / "fashion_mnist" / "resnet20_fmnist.onnx"


def _quantized(w, name, role, step_rel, refine=False, seed=3):
    """One tensor through its quantizer (codec.quantize): what the table stage works on."""
    cfg = quantizers.by_name(name).tensor_config(LatticeConfig(step_rel=step_rel, refine=refine), axis_order(role, w.shape))
    return quantize(w, name, cfg, seed)


def _blob(q):
    return pack(q, "brotli").blob


def _error(q, w_rows, gram):
    e = dequantize(q).astype(np.float64).reshape(w_rows.shape) - w_rows
    return float(np.sum(e * (e @ gram[0])))


def test_values_are_the_exact_least_squares_solution():
    """Scalar, one output row, every key chosen: PCG reaches the dense normal equations' solution."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((1, 40)).astype(np.float32)  # Gemm B transposed: one output of 40 inputs
    x = rng.standard_normal((200, 40)) @ rng.standard_normal((40, 40))
    gram = (x.T @ x)[None]
    q = _quantized(w, "scalar", "gemm_b_transposed", 1.0)
    new, fit = codeword_fit.fit_table(q, w, "gemm_b_transposed", gram, max_entries=4096, iterations=200, keys="all")
    header = new.header
    table = codewords.parse(header.params, 1)
    # dense solution over the same keys: w_hat = (a[key] - dither) * step
    base = dequantize(q).astype(np.float64).reshape(-1)
    sym = np.asarray(q.symbols).astype(np.uint32)
    cols = [(sym == k).astype(np.float64) * header.step for k in table.keys[:, 0]]
    j = np.stack(cols, axis=1)  # [40, C]
    points = unzigzag(table.keys[:, 0]).astype(np.float64)
    resid = base - w.reshape(-1).astype(np.float64) - j @ points  # error with every chosen value at 0
    m = j.T @ gram[0] @ j
    best = np.linalg.solve(m, -j.T @ gram[0] @ resid)
    assert fit.entries == table.size == fit.candidates > 0
    assert np.allclose(table.values[:, 0], best, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def real_layer():
    """A 3x3 conv of the bundled Fashion-MNIST ResNet-20 and the Gram of its input."""
    from onnx_udc.fit.activations import ActivationProbe
    from onnx_udc.fit.calib import synthesize

    model = onnx.load(str(FMNIST))
    name = "layer2.1.conv1.weight"
    w = next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == name)
    probe = ActivationProbe(model, [name])
    gram = probe.stats(synthesize(model, 16).batches, [name], max_rows=512)[name].gram
    return w, gram


@pytest.mark.parametrize("name, step_rel", [("scalar", 1.0), ("scalar", 2.0), ("d4", 2.0)])
def test_data_driven_values_beat_the_weights_only_table(real_layer, library, name, step_rel):
    from onnx_udc.native import NativeDecoder

    w, gram = real_layer
    rows = w.reshape(w.shape[0], -1).astype(np.float64)
    weights_only = _quantized(w, name, "conv", step_rel, refine=True)
    plain = _quantized(w, name, "conv", step_rel)
    native = NativeDecoder(library)
    # the keys of the weights-only table, values re-solved on the data
    same_keys, fit = codeword_fit.fit_table(weights_only, w, "conv", gram, keys="table")
    n_table = codewords.parse(weights_only.header.params[(0 if name == "scalar" else 4):] or b"\0\0\0\0",
                              1 if name == "scalar" else 4).size
    assert n_table or name != "scalar"  # the scalar cases do have a weights-only table
    if n_table:
        assert _error(same_keys, rows, gram) < _error(weights_only, rows, gram)
        assert fit.entries == n_table and not fit.kept_input
    # keys chosen on the data, from the plain blob
    chosen, fit = codeword_fit.fit_table(plain, w, "conv", gram, keys="data")
    assert _error(chosen, rows, gram) <= _error(plain, rows, gram)
    assert fit.error_final <= fit.error_input and fit.trace[-1] <= fit.trace[0] * (1 + 1e-9)
    for q in (same_keys, chosen):
        assert np.array_equal(q.symbols, plain.symbols)  # the symbols are untouched
        blob = _blob(q)
        assert parse_blob(blob)[1].tobytes() == parse_blob(_blob(plain))[1].tobytes()  # so is the payload
        assert native.decode(blob).tobytes() == decode_blob(blob).tobytes() == dequantize(q).tobytes()


def test_e8_table_on_repeated_points(library):
    """Coarse E8: points repeat; the 16 first keys get entries, the error falls."""
    from onnx_udc.native import NativeDecoder

    rng = np.random.default_rng(1)
    w = (rng.standard_normal((64, 256)) * rng.exponential(1.0, (1, 256))).astype(np.float32)  # Gemm transB
    x = rng.standard_normal((300, 256)) + 0.5
    gram = (x.T @ x)[None]
    plain = _quantized(w, "e8", "gemm_b_transposed", 3.0)
    new, fit = codeword_fit.fit_table(plain, w, "gemm_b_transposed", gram, keys="all", max_entries=16)
    assert fit.entries == 16 and fit.error_final < fit.error_input and fit.candidates < w.size // 8
    assert NativeDecoder(library).decode(_blob(new)).tobytes() == dequantize(new).tobytes()


def test_refine_model_bottom_up(library):
    from onnx_udc.fit.calib import CalibrationSet
    from onnx_udc import CompressConfig
    from onnx_udc.graph import decode_nodes
    from onnx_udc.native import NativeDecoder
    from tests.test_pq import _conv_model

    rng = np.random.default_rng(4)
    w = rng.standard_normal((32, 4, 3, 3)).astype(np.float32)
    b_mat = rng.standard_normal((8, 64)).astype(np.float32)
    model = _conv_model(w, b_mat, 1, [1, 1], [1, 1, 1, 1], [1, 1])
    calib = CalibrationSet([{"x": rng.standard_normal((2, 4, 9, 8)).astype(np.float32)} for _ in range(2)], False, "t")
    config = CompressConfig(quantizer="e8", scalar=LatticeConfig(step_rel=1.5), min_elements=256)
    for target in codeword_fit.TARGETS:
        compressed, report, tables = codeword_fit.compress_refined(model, config, calib, target=target)
        assert [l.name for l in tables.layers] == ["w", "b"]
        assert all(l.fit.error_final <= l.fit.error_input for l in tables.layers)
        native = NativeDecoder(library)
        for node, blob in decode_nodes(compressed):
            data = numpy_helper.to_array(blob).tobytes()
            assert native.decode(data).tobytes() == decode_blob(data).tobytes()
        sizes = {t.name: t.blob_bytes for t in report.tensors}
        assert sizes["w"] == len(numpy_helper.to_array(dict((n.output[0], b) for n, b in decode_nodes(compressed))["w"]))


def test_other_quantizers_are_refused():
    w = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    raw = quantize(w, "raw")
    with pytest.raises(ConfigError):
        codeword_fit.fit_table(raw, w, "gemm_b_transposed", np.eye(16)[None])
    with pytest.raises(ConfigError):
        codeword_fit.fit_table(_quantized(w, "scalar", "gemm_b_transposed", 1.0), w, "gemm_b_transposed",
                               np.eye(16)[None], keys="bogus")


def test_cli_refine_codewords(tmp_path, capsys):
    from onnx_udc.cli import main
    from tests.test_pq import _conv_model

    rng = np.random.default_rng(6)
    model = _conv_model(rng.standard_normal((32, 4, 3, 3)).astype(np.float32),
                        rng.standard_normal((8, 64)).astype(np.float32), 1, [1, 1], [1, 1, 1, 1], [1, 1])
    src, out = tmp_path / "m.onnx", tmp_path / "m.udc.onnx"
    onnx.save_model(model, str(src))
    np.savez(tmp_path / "calib.npz", x=rng.standard_normal((2, 4, 9, 8)).astype(np.float32))
    base = ["compress", str(src), "-o", str(out), "--quantizer", "e8", "--step-rel", "1.5", "--min-elements", "256"]
    code = main(base + ["--refine-codewords", "data", "--calib", str(tmp_path / "calib.npz"), "--calib-samples", "2"])
    captured = capsys.readouterr()
    assert code == 0 and out.exists() and "codeword tables: 2 layers" in captured.err, captured.err
    assert main(base + ["--refine-codewords", "weights", "-q"]) == 0
    assert main(base + ["--refine-codewords", "data", "--codeword-target", "weights", "--calib", str(tmp_path / "calib.npz"),
                        "--calib-samples", "2", "-q"]) == 0
    code = main(base + ["--refine-codewords", "data", "-q"])
    assert code == 2 and "--calib" in capsys.readouterr().err


def test_bench_merge_keeps_earlier_rows_and_replaces_vq_rows():
    from models.bench import ModelResult, Row, merge_vq, vq_section

    def row(name, kind, ratio, acc):
        return Row("m", name, kind, "udc-fast", 100, ratio, 1.0, None, {"accuracy": acc}, 1, 1, 1, 1, None,
                   series="E8" if kind == "vq" else "", compress_s=2.0, compress_peak_mb=10.0, calib_samples=8)

    earlier = ModelResult("m", "M", "accuracy", 1000, 10, rows=[row("original", "original", 1, 0.9),
                          row("E8 old", "vq", 5, 0.5)], target={"metric": "accuracy", "threshold": 0.8})
    fresh = ModelResult("m", "M", "accuracy", 1000, 10, rows=[row("original", "original", 1, 0.9), row("E8 s=1", "vq", 9, 0.85)])
    merged = merge_vq(earlier, fresh)
    assert [r.variant for r in merged.rows] == ["original", "E8 s=1"] and merged.target == earlier.target
    text = "\n".join(vq_section(merged))
    assert "| E8 s=1 | E8 | 9.00x | 0.8500 | 2.0 | 10 | 8 |" in text and "- E8: E8 s=1: 9.00x" in text


def test_output_target_keeps_unseen_directions():
    """Fewer rows than inputs: t equals w where the rows see nothing; with Xq = Xf, t = w."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 12))
    xq = rng.standard_normal((4, 12))  # 4 rows, K = 12: rank 4
    h = (xq.T @ xq)[None]
    assert np.allclose(codeword_fit.output_target(w, h, h), w)
    xf = xq + 0.1 * rng.standard_normal((4, 12))
    t = codeword_fit.output_target(w, h, (xq.T @ xf)[None])
    assert np.allclose(xq @ t.T, xf @ w.T, atol=1e-4)  # matches the original outputs on the rows
    null = np.linalg.svd(xq)[2][4:]  # [8, 12] directions the rows do not see
    assert np.allclose(t @ null.T, w @ null.T)
