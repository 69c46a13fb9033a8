"""The per-channel scalar quantizer (FORMAT.md 4.8): error law, noise power, configuration,
hostile params in both decoders, Python vs C++ bytes, golden coverage."""

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onnx_udc import quantizers
from onnx_udc.codec import decode_blob, encode_tensor, quantize
from onnx_udc.errors import ConfigError, FormatError
from onnx_udc.format import BlobHeader, QuantizerId, pack_blob, parse_blob
from onnx_udc.format.dither import dither
from onnx_udc.quantizers.base import StepConfig
from onnx_udc.quantizers.scalar_channel import MIN_REL, ChannelConfig, channel_of_elements, channel_rms, parse_params

GOLDEN = Path(__file__).resolve().parent / "golden"
Q = quantizers.by_name("scalar_channel")


def _spread(rng, shape, axis, lo=-4.0, hi=3.0):
    """Gaussian weights, channel c along ``axis`` scaled by 10^(lo .. hi)."""
    scale = np.logspace(lo, hi, shape[axis]).reshape([-1 if a == axis else 1 for a in range(len(shape))])
    return rng.standard_normal(shape) * scale


def _steps_per_element(blob):
    header, _ = parse_blob(blob)
    axis, steps = parse_params(header)
    return header, steps[channel_of_elements(header.shape, axis)].astype(np.float64).reshape(header.shape)


@pytest.fixture(scope="module")
def native(library):
    from onnx_udc.native import NativeDecoder

    return NativeDecoder(library)


# ---- the quantizer as rate allocation sees it -------------------------------------------
def test_registered_with_its_format_id():
    assert Q.id == QuantizerId.SCALAR_CHANNEL == 6 and quantizers.by_id(6) is Q
    assert Q.has_step and not Q.lossless and Q.table_layout(None) is None


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_error_is_within_one_channel_step(axis):
    """Subtractive dither: |w - w_hat| <= s_c / 2 up to binary32 rounding, so <= s_c."""
    rng = np.random.default_rng(axis)
    w = _spread(rng, (6, 7, 8), axis, -3.0, 3.0).astype(np.float32)
    blob = encode_tensor(w, "scalar_channel", "brotli", ChannelConfig(step_rel=0.1, axis=axis), seed=5).blob
    header, s_e = _steps_per_element(blob)
    err = np.abs(decode_blob(blob).astype(np.float64) - w)
    assert np.all(err <= s_e) and np.all(err <= 0.5 * s_e * (1 + 1e-6) + np.abs(w) * 2**-23)
    # the channel steps follow the channels' RMS, relative to the tensor's step
    rel = np.maximum(channel_rms(w, axis) / math.sqrt(np.mean(w.astype(np.float64) ** 2)), MIN_REL)
    _, steps = parse_params(header)
    np.testing.assert_array_equal(steps, (np.float32(header.step) * rel).astype(np.float32))


def test_float16_error_adds_only_the_rounding_to_half():
    rng = np.random.default_rng(1)
    w = _spread(rng, (8, 9), 0, -2.0, 2.0).astype(np.float16)
    blob = encode_tensor(w, "scalar_channel", "store", ChannelConfig(step_rel=0.05), seed=2).blob
    _, s_e = _steps_per_element(blob)
    out = decode_blob(blob)
    assert out.dtype == np.float16
    assert np.all(np.abs(out.astype(np.float64) - w) <= s_e + np.abs(w.astype(np.float64)) * 2**-10)


def test_noise_power_is_the_scalar_one_over_the_tensor():
    """The mean of s_c^2 weighted by channel sizes is step^2, so the tensor's mean squared
    error is step^2 / 12 whatever the channels' spread (and each channel's its own)."""
    rng = np.random.default_rng(7)
    w = _spread(rng, (32, 4096), 0, -2.0, 2.0)
    step = 0.01 * math.sqrt(np.mean(w**2))
    q = quantize(w.astype(np.float32), "scalar_channel", ChannelConfig(step=step), seed=11)
    axis, steps = parse_params(q.header)
    sizes = np.full(steps.size, w.size // steps.size)
    weighted = float(np.sum(sizes * steps.astype(np.float64) ** 2) / w.size) / 12.0
    assert weighted == pytest.approx(Q.noise_power(q.header.step), rel=1e-5)
    assert Q.noise_power(step) == pytest.approx(step * step / 12.0)
    err = Q.decode(q.header, q.symbols).astype(np.float64).reshape(w.shape) - w.astype(np.float32)
    assert float(np.mean(err**2)) == pytest.approx(Q.noise_power(q.header.step), rel=0.03)
    per_channel = np.mean(err**2, axis=1) / (steps.astype(np.float64) ** 2 / 12.0)  # each channel: s_c^2 / 12
    assert np.all(np.abs(per_channel - 1) < 0.1)


def test_small_channels_keep_their_resolution():
    """The point of the quantizer: at the same tensor step the small channels survive."""
    rng = np.random.default_rng(3)
    w = _spread(rng, (16, 1, 3, 3), 0, -3.0, 1.0).astype(np.float32)
    chan = decode_blob(encode_tensor(w, "scalar_channel", "store", ChannelConfig(step_rel=0.1), seed=1).blob)
    flat = decode_blob(encode_tensor(w, "scalar", "store", StepConfig(step_rel=0.1), seed=1).blob)

    def sqnr(c, out):
        return 10 * math.log10(np.sum(w[c] ** 2) / np.sum((out[c] - w[c]) ** 2))

    assert sqnr(0, chan) > 15 and sqnr(0, flat) < 0  # the smallest channel: 1e-3 of the largest


def test_zero_channel_gets_the_floor_step():
    w = np.random.default_rng(0).standard_normal((4, 10)).astype(np.float32)
    w[2] = 0
    q = quantize(w, "scalar_channel", ChannelConfig(step_rel=0.2), seed=3)
    _, steps = parse_params(q.header)
    assert steps[2] == np.float32(q.header.step * MIN_REL)
    out = Q.decode(q.header, q.symbols).reshape(w.shape)
    assert np.all(np.abs(out[2]) <= steps[2])


def test_tensor_config_takes_the_output_axis():
    cfg = Q.tensor_config(StepConfig(step=0.5, step_rel=0.3), (1, 0))  # MatMul B [K, N]: N
    assert isinstance(cfg, ChannelConfig) and cfg.axis == 1 and cfg.step == 0.5 and cfg.step_rel == 0.3
    assert Q.tensor_config(ChannelConfig(axis=2), (0, 1, 2, 3)).axis == 2  # named by the config
    assert Q.tensor_config(None, (0, 1, 2, 3)).axis == 0  # Conv O
    assert Q.tensor_config(StepConfig(), (1, 0, 2, 3)).axis == 1  # ConvTranspose O


def test_default_axis_is_0_and_target_bpw_is_met():
    rng = np.random.default_rng(4)
    w = _spread(rng, (8, 500), 0, -2.0, 2.0).astype(np.float32)
    q = quantize(w, "scalar_channel", StepConfig(target_bpw=4.0), seed=9)
    assert parse_params(q.header)[0] == 0
    from onnx_udc.quantizers.scalar import entropy_bits
    from onnx_udc.format.symbols import unzigzag

    assert entropy_bits(unzigzag(q.symbols.astype(np.uint32)).astype(np.int64)) == pytest.approx(4.0, abs=0.15)


@pytest.mark.parametrize("width,step_rel", [(1, 0.5), (2, 0.01), (4, 1e-6)])
def test_symbol_widths(width, step_rel):
    w = _spread(np.random.default_rng(width), (5, 64), 1, -1.0, 1.0).astype(np.float32)
    assert quantize(w, "scalar_channel", ChannelConfig(step_rel=step_rel, axis=1), 1).header.symbol_width == width


@pytest.mark.parametrize("weights,config,match", [
    (np.array(1.0, np.float32), ChannelConfig(), "at least one axis"),
    (np.ones((2, 3), np.float32), ChannelConfig(axis=2), "not an axis"),
    (np.zeros((2, 3), np.float32), ChannelConfig(), "non-zero"),
    (np.ones((2, 3), np.float32), ChannelConfig(refine=True), "codeword table"),
    (np.ones((2, 3), np.float32) * np.float32(1e30), ChannelConfig(step=1e-30), "overflow 32 bits"),
    (np.array([[1.0, 1.0], [1e-30, 1e-30]], np.float32), ChannelConfig(step=1e-36), "normal positive float32"),
    (np.ones((2, 3), np.float32), object(), "StepConfig"),
])
def test_encoder_refuses_cleanly(weights, config, match):
    with pytest.raises(ConfigError, match=match):
        Q.encode(weights, config, 0)


# ---- hostile params: both decoders reject them with BAD_HEADER --------------------------
def _good_blob():
    w = _spread(np.random.default_rng(2), (3, 4), 1, -1.0, 1.0).astype(np.float32)
    return encode_tensor(w, "scalar_channel", "store", ChannelConfig(step_rel=0.1, axis=1), seed=4).blob


def _with(blob, **changes):
    header, payload = parse_blob(blob)
    names = ("quantizer", "coder", "dtype", "shape", "symbol_width", "step", "seed", "params")
    fields = {f: getattr(header, f) for f in names}
    fields.update(changes)
    return pack_blob(BlobHeader(**fields), bytes(payload))


def _steps(*values):
    return struct.pack(f"<{len(values)}f", *values)


def _bits(*patterns):
    return struct.pack(f"<{len(patterns)}I", *patterns)


HOSTILE = {
    "empty params": b"",
    "short by one byte": bytes([1]) + _steps(1.0, 1.0, 1.0, 1.0)[:-1],
    "one step missing": bytes([1]) + _steps(1.0, 1.0, 1.0),
    "one step too many": bytes([1]) + _steps(1.0, 1.0, 1.0, 1.0, 1.0),
    "trailing byte": bytes([1]) + _steps(1.0, 1.0, 1.0, 1.0) + b"\0",
    "axis 0 with the steps of axis 1": bytes([0]) + _steps(1.0, 1.0, 1.0, 1.0),
    "axis == ndim": bytes([2]) + _steps(1.0, 1.0, 1.0, 1.0),
    "axis 255": bytes([255]) + _steps(1.0, 1.0, 1.0, 1.0),
    "zero step": bytes([1]) + _steps(1.0, 0.0, 1.0, 1.0),
    "negative zero step": bytes([1]) + _bits(0x3F800000, 0x80000000, 0x3F800000, 0x3F800000),
    "negative step": bytes([1]) + _steps(1.0, 1.0, -1.0, 1.0),
    "nan step": bytes([1]) + _steps(1.0, 1.0, 1.0, float("nan")),
    "inf step": bytes([1]) + _steps(float("inf"), 1.0, 1.0, 1.0),
    "largest subnormal step": bytes([1]) + _bits(0x3F800000, 0x007FFFFF, 0x3F800000, 0x3F800000),
    "smallest subnormal step": bytes([1]) + _bits(0x3F800000, 0x3F800000, 0x00000001, 0x3F800000),
}


def test_the_good_blob_and_the_smallest_normal_step_decode(native):
    blob = _good_blob()
    assert native.decode(blob).tobytes() == decode_blob(blob).reshape(-1).tobytes()
    tiny = _with(blob, params=bytes([1]) + _bits(0x00800000, 0x3F800000, 0x3F800000, 0x7F7FFFFF))
    assert native.decode(tiny).tobytes() == decode_blob(tiny).reshape(-1).tobytes()


@pytest.mark.parametrize("params", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_params_are_bad_header_in_both_decoders(params, native):
    blob = _with(_good_blob(), params=params)
    with pytest.raises(FormatError) as err:
        decode_blob(blob)
    assert err.value.status == "BAD_HEADER"
    for fn in (native.decode, native.decode_units):
        with pytest.raises(FormatError) as err:
            fn(blob)
        assert err.value.status == "BAD_HEADER", str(err.value)


@pytest.mark.parametrize("changes", [{"step": 0.0}, {"step": float("nan")}, {"step": -1.0}, {"dtype": 3},
                                     {"symbol_width": 3}, {"shape": (), "params": bytes([0])}],
                         ids=["step0", "step_nan", "step_neg", "dtype_int8", "width3", "zero_d"])
def test_other_header_faults_are_bad_header(changes, native):
    blob = _with(_good_blob(), **changes)
    for fn in (decode_blob, native.decode):
        with pytest.raises(FormatError) as err:
            fn(blob)
        assert err.value.status == "BAD_HEADER"


def test_empty_tensor_has_no_steps(native):
    blob = _with(_good_blob(), shape=(3, 0), params=bytes([1]))  # C = 0
    blob = pack_blob(parse_blob(blob)[0], b"")
    assert decode_blob(blob).shape == (3, 0) and native.decode(blob).size == 0


# ---- Python vs C++ ------------------------------------------------------------------------
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_python_and_native_decoders_agree(native, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="rng"))
    ndim = data.draw(st.integers(1, 4), label="ndim")
    shape = tuple(data.draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim), label="shape"))
    axis = data.draw(st.integers(0, ndim - 1), label="axis")
    dtype = data.draw(st.sampled_from([np.float32, np.float16]), label="dtype")
    lo = data.draw(st.sampled_from([-4.0, -1.0, 0.0]), label="lo")
    w = _spread(rng, shape, axis, lo, lo + data.draw(st.sampled_from([0.0, 2.0, 4.0]), label="span"))
    if data.draw(st.booleans(), label="zero_channel") and shape[axis] > 1:
        np.moveaxis(w, axis, 0)[0] = 0.0
    w = w.astype(dtype)
    if not np.any(w):
        return
    config = ChannelConfig(step_rel=data.draw(st.sampled_from([1e-6, 0.003, 0.3, 3.0]), label="step_rel"), axis=axis)
    coder = data.draw(st.sampled_from(["store", "brotli", "range", "rans"]), label="coder")
    seed = data.draw(st.integers(0, 2**64 - 1), label="seed")
    blob = encode_tensor(w, "scalar_channel", coder, config, seed=seed).blob
    expected = decode_blob(blob)
    assert expected.dtype == dtype and expected.shape == shape
    assert native.decode(blob).tobytes() == expected.tobytes()
    assert native.decode(blob, threads=3).tobytes() == expected.tobytes()
    assert native.decode_units(blob).tobytes() == expected.tobytes()


def test_reference_formula_matches_a_direct_computation():
    """FORMAT.md 4.8 written out with numpy scalars: (float32(q) - d_i) * step_c."""
    w = _spread(np.random.default_rng(5), (3, 4, 5), 1, -2.0, 2.0).astype(np.float32)
    q = quantize(w, "scalar_channel", ChannelConfig(step_rel=0.2, axis=1), seed=77)
    axis, steps = parse_params(q.header)
    d = dither(77, w.size)
    from onnx_udc.format.symbols import unzigzag

    idx = unzigzag(q.symbols.astype(np.uint32))
    out = Q.decode(q.header, q.symbols)
    for i in range(w.size):
        c = (i // 5) % 4
        assert out[i] == (np.float32(idx[i]) - d[i]) * steps[c]


# ---- golden vectors -------------------------------------------------------------------------
def test_golden_vectors_cover_the_quantizer():
    cases = [c for c in json.loads((GOLDEN / "manifest.json").read_text()) if c["name"].startswith("chan_")]
    headers = [parse_blob((GOLDEN / f"{c['name']}.blob").read_bytes())[0] for c in cases]
    assert all(h.quantizer == QuantizerId.SCALAR_CHANNEL for h in headers)
    assert {h.dtype.name for h in headers} == {"FLOAT", "FLOAT16"}
    assert {h.symbol_width for h in headers} == {1, 2, 4}
    assert {h.coder for h in headers} >= {0, 1}
    axes = {(parse_params(h)[0], len(h.shape)) for h in headers}
    assert any(a == 0 for a, _ in axes) and any(a == n - 1 for a, n in axes) and any(0 < a < n - 1 for a, n in axes)
    zero_channel = False
    for c, h in zip(cases, headers):
        _, steps = parse_params(h)
        zero_channel |= bool(np.any(steps == np.float32(np.float32(h.step) * MIN_REL)))
    assert zero_channel
