"""Quantizer 1's native float32 encoder kernels (udc_scalar_codes / udc_scalar_error /
udc_symbol_histogram, onnx_udc.native.NativeScalar) against the numpy reference of
onnx_udc.quantizers.scalar: the same codes and widths byte for byte, the same typed errors,
the same blobs for a whole compress with and without them and for any worker count."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from onnx_udc import codec
from onnx_udc.encoder import CompressConfig, compress_model
from onnx_udc.errors import ConfigError
from onnx_udc.format.dither import derive_seed, dither
from onnx_udc.format.symbols import width_for, zigzag
from onnx_udc.quantizers import scalar
from onnx_udc.quantizers.scalar import REFERENCE_ENV, ScalarConfig, indices

native = pytest.importorskip("onnx_udc.native")
try:
    KERNELS = native.native_scalar()
except Exception as exc:  # noqa: BLE001
    pytest.skip(f"native library: {exc}", allow_module_level=True)

SIZES = [0, 1, 2, 7, 1023, 1024, 1025, 4097, 65537]


def reference_codes(flat: np.ndarray, step: float, seed: int) -> tuple[np.ndarray, int]:
    """zigzag(indices(w, step, dither)) in the narrowest width: the definition, whole."""
    z = zigzag(indices(flat, step, dither(seed, flat.size))) if flat.size else np.zeros(0, np.uint64)
    width = width_for(int(z.max()) if z.size else 0)
    return z.astype(np.dtype(f"<u{width}")), width


def weights(kind: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "normal":
        return rng.standard_normal(n, dtype=np.float32) * np.float32(0.02)
    if kind == "laplace":
        return rng.laplace(size=n).astype(np.float32)
    if kind == "cauchy":  # heavy tails: 2- and 4-byte codes
        return (rng.standard_cauchy(n) * 0.01).astype(np.float32)
    if kind == "tiny":  # subnormals and zeros
        return (rng.standard_normal(n) * 1e-40).astype(np.float32)
    raise ValueError(kind)


@pytest.fixture
def reference(monkeypatch):
    """Runs the block with the numpy reference only."""
    monkeypatch.setenv(REFERENCE_ENV, "1")
    yield
    monkeypatch.delenv(REFERENCE_ENV)


@pytest.mark.parametrize("kind", ["normal", "laplace", "cauchy", "tiny"])
@pytest.mark.parametrize("n", SIZES)
def test_codes_match_the_reference(kind, n):
    w = weights(kind, n, seed=n)
    rms = max(scalar._rms(w), 1e-30)
    for step_rel in (0.05, 0.7, 3.0):
        step = float(np.float32(step_rel * rms))
        seed = derive_seed(n, kind)
        codes, width = scalar._codes_native(KERNELS, w, step, seed)
        want, want_width = reference_codes(w, step, seed)
        assert width == want_width and codes.dtype == want.dtype
        assert codes.tobytes() == want.tobytes()


def test_rounding_ties_go_to_even():
    n = 4096
    seed = 12345
    d = dither(seed, n)  # float32 [n]
    step = 0.25  # a power of two: w / step is exact
    # w / step + d is exactly k + 0.5 for these weights (each float32 value is exact)
    half = ((np.float32(0.5) - d) * np.float32(step)).astype(np.float32)  # x = 0.5 -> 0
    minus_half = (-d * np.float32(step)).astype(np.float32) - np.float32(0.5 * step)  # x = -0.5 -> -0
    for w in (half, minus_half):
        x = w.astype(np.float64) / step + d.astype(np.float64)
        assert np.all(np.abs(x) == 0.5)
        codes, _ = scalar._codes_native(KERNELS, w, step, seed)
        want, _ = reference_codes(w, step, seed)
        assert codes.tobytes() == want.tobytes() and not codes.any()  # rint(+-0.5) = 0


def test_chunks_done_alone_give_the_whole():
    w = weights("laplace", 10_000, seed=3)
    whole, _, _ = KERNELS.codes(w, 0.1, 77, 4)
    parts = [KERNELS.codes(w[a:b], 0.1, 77, 4, start=a)[0] for a, b in ((0, 1), (1, 4097), (4097, 10_000))]
    assert np.concatenate(parts).tobytes() == whole.tobytes()


def test_a_code_too_wide_for_the_buffer_is_reported():
    w = np.array([0.0, 1000.0], np.float32)
    codes, top, overflow = KERNELS.codes(w, 1.0, 0, 1)
    assert codes is None and not overflow and width_for(top) == 2
    codes, top2, _ = KERNELS.codes(w, 1.0, 0, 2)
    assert top2 == top and codes.tobytes() == reference_codes(w, 1.0, 0)[0].tobytes()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_raise_the_reference_error(bad, monkeypatch):
    w = weights("normal", 3000, seed=1)
    w[1234] = bad
    _, _, overflow = KERNELS.codes(w, 0.01, 5, 4)
    assert overflow
    errors = []
    for env in ("", "1"):
        monkeypatch.setenv(REFERENCE_ENV, env)
        with pytest.raises(ConfigError) as info:
            scalar._codes_chunked(w, 0.01, 5)
        errors.append(str(info.value))
        with pytest.raises(ConfigError):  # the whole quantizer refuses it before any index
            codec.quantize(w.reshape(50, 60), "scalar", ScalarConfig(step_rel=0.05), 5)
    assert errors[0] == errors[1]


@pytest.mark.parametrize("values,step", [
    ([1e30, 0.0], 1e-3),                          # far beyond 32 bits
    ([2147483520.0, -2147483520.0, 1.0], 1.0),    # the largest float32 below 2^31: fits (4-byte codes)
    ([2147483648.0], 1.0),                         # 2^31: overflows
    ([-2147483648.0], 1.0),                        # -2^31 rounds to -2^31 (ties to even at -2^31 + 0.5)
    ([3.0e38, -3.0e38], 2.0**-126),                # the largest weights over the smallest normal step
])
def test_huge_values_overflow_exactly_where_the_reference_does(values, step, monkeypatch):
    w = np.array(values, np.float32)
    outcomes = []
    for env in ("", "1"):
        monkeypatch.setenv(REFERENCE_ENV, env)
        try:
            codes, width = scalar._codes_chunked(w, step, 99)
            outcomes.append((codes.tobytes(), width, codes.dtype.str))
        except ConfigError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]


def test_error_energy_matches_the_reference_decode():
    w = weights("laplace", 70_007, seed=9).reshape(7, 10_001)
    q = codec.quantize(w, "scalar", ScalarConfig(step_rel=0.3), seed=4)
    signal, noise = q_error = KERNELS.error(w.reshape(-1), q.symbols, q.header.step, q.header.seed)
    decoded = codec.dequantize(q).astype(np.float64)
    assert signal == pytest.approx(float(np.sum(w.astype(np.float64) ** 2)), rel=1e-12)
    assert noise == pytest.approx(float(np.sum((decoded - w) ** 2)), rel=1e-12)
    assert codec.quantized_sqnr(w, q) == pytest.approx(codec.sqnr_db(w, codec.dequantize(q)), abs=1e-9)
    assert q_error == KERNELS.error(w.reshape(-1), q.symbols.astype(np.uint32), q.header.step, q.header.seed)


def test_symbol_entropy_counts_are_bincounts(monkeypatch):
    rng = np.random.default_rng(0)
    for dtype, top in ((np.uint8, 255), (np.uint16, 3000), (np.uint32, 70_000)):
        s = rng.integers(0, top + 1, 50_001).astype(dtype)
        counts = KERNELS.histogram(s, int(s.max()) + 1)
        assert counts.dtype == np.int64 and np.array_equal(counts, np.bincount(s.astype(np.int64)))
        assert KERNELS.histogram(s, int(s.max())) is None  # a symbol past the counts: refused
        fast = codec.symbol_entropy(s)
        monkeypatch.setenv(REFERENCE_ENV, "1")
        assert codec.symbol_entropy(s) == fast  # the same float, bit for bit
        monkeypatch.delenv(REFERENCE_ENV)


def test_rans_reads_narrow_symbols_in_place():
    rans = native.native_rans()
    rng = np.random.default_rng(2)
    for dtype, width in ((np.uint8, 1), (np.uint16, 2), (np.uint16, 1), (np.uint32, 2)):
        s = np.minimum(rng.geometric(0.05, 40_000) - 1, (1 << (8 * width)) - 1).astype(dtype)
        assert rans.encode(s, width) == rans.encode(s.astype(np.uint32), width)
    with pytest.raises(native.FormatError):  # a uint16 symbol that does not fit 1 byte
        rans.encode(np.array([1, 300], np.uint16), 1)


def mlp(sizes: list[tuple[int, int]], seed: int = 0) -> onnx.ModelProto:
    """A MatMul chain with the given weight shapes (odd sizes included) and float32 biases."""
    rng = np.random.default_rng(seed)
    nodes, inits, x = [], [], "x"
    for i, (rows, cols) in enumerate(sizes):
        w = (rng.standard_normal((rows, cols)) / np.sqrt(rows)).astype(np.float32)
        if i == 1:
            w[0, :5] = [30.0, -25.0, 0.0, 1e-3, 7.0]  # outliers: wider codes
        inits += [nh.from_array(w, f"w{i}"), nh.from_array(rng.standard_normal(cols).astype(np.float32) * 0.1, f"b{i}")]
        nodes += [h.make_node("MatMul", [x, f"w{i}"], [f"m{i}"]), h.make_node("Add", [f"m{i}", f"b{i}"], [f"y{i}"])]
        x = f"y{i}"
    graph = h.make_graph(nodes, "mlp", [h.make_tensor_value_info("x", T.FLOAT, ["N", sizes[0][0]])],
                         [h.make_tensor_value_info(x, T.FLOAT, ["N", sizes[-1][1]])], inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])
    model.ir_version = 8
    return model


SHAPES = [(64, 257), (257, 1031), (1031, 96), (96, 3000)]


def compressed(model: onnx.ModelProto, threads: int, coder: str = "auto") -> bytes:
    config = CompressConfig(scalar=ScalarConfig(step_rel=0.05), threads=threads, coder=coder)
    out, report = compress_model(model, config)
    assert report.tensors and all(np.isfinite(t.sqnr_db) for t in report.tensors)
    return out.SerializeToString()


@pytest.mark.parametrize("coder", ["auto", "brotli"])
def test_whole_compress_is_the_same_with_and_without_the_native_kernels(coder, monkeypatch):
    model = mlp(SHAPES)
    fast = compressed(model, 2, coder)
    monkeypatch.setenv(REFERENCE_ENV, "1")
    assert compressed(model, 2, coder) == fast


def test_whole_compress_is_the_same_for_any_worker_count():
    model = mlp(SHAPES, seed=1)
    outputs = {threads: compressed(model, threads) for threads in (1, 2, 4)}
    assert outputs[1] == outputs[2] == outputs[4]


def test_the_reference_runs_when_the_kernels_are_absent(monkeypatch):
    model = mlp(SHAPES[:2], seed=2)
    fast = compressed(model, 1)

    def absent(*args, **kwargs):
        raise AssertionError("the native kernel ran")

    monkeypatch.setattr(scalar, "_kernels", lambda: None)  # as without the library
    monkeypatch.setattr(native.NativeScalar, "codes", absent)
    monkeypatch.setattr(native.NativeScalar, "error", absent)
    monkeypatch.setattr(native.NativeScalar, "histogram", absent)
    assert scalar.native_kernels() is None
    assert compressed(model, 1) == fast


def test_a_seed_outside_uint64_takes_the_reference_path(monkeypatch):
    w = weights("normal", 100, seed=0)
    with pytest.raises(ValueError):
        KERNELS.codes(w, 0.01, -1, 1)
    outcomes = []
    for env in ("", "1"):
        monkeypatch.setenv(REFERENCE_ENV, env)
        try:
            outcomes.append(scalar._codes_chunked(w, 0.01, -1)[0].tobytes())
        except (OverflowError, ValueError) as exc:  # numpy's refusal of uint64(-1)
            outcomes.append(type(exc).__name__)
    assert outcomes[0] == outcomes[1]
