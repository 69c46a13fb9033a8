"""Coder 2, range: the C++ coder (through ctypes) against the pure-Python reference of
FORMAT.md 5.2 (tests/range_reference.py), round trips, rate, and hostile payloads."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import range_reference as ref
from onnx_udc import FormatError, RuntimeLibraryError, decode_blob, encode_tensor
from onnx_udc.codec import symbol_entropy
from onnx_udc.coders import by_name
from onnx_udc.quantizers.base import StepConfig


@pytest.fixture(scope="module")
def native(library):
    from onnx_udc.native import NativeRange

    return NativeRange(library)


def laplace_symbols(rng, n, scale, width):
    q = np.rint(rng.laplace(size=n) * scale).astype(np.int64)
    s = ((q << 1) ^ (q >> 63)).astype(np.uint64)  # zigzag
    return np.minimum(s, (1 << (8 * width)) - 1)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([1, 2, 4]), st.integers(0, 400), st.sampled_from([1, 2, 3, 4, 8, 255, 256, 300, 1000, 20000, 1 << 20]),
       st.floats(0.01, 1e5), st.integers(0, 2**32))
def test_native_encoder_matches_reference_bytes_and_both_decoders_invert(width, n, period, scale, seed):
    rng = np.random.default_rng(seed)
    s = laplace_symbols(rng, n, scale, width)  # uint64 [n]
    if n >= 2:
        s[0], s[-1] = (1 << (8 * width)) - 1, (1 << (8 * width)) - 2  # the largest symbols
    from onnx_udc.native import native_range  # (the fixture cannot be used with @given)

    payload = native_range().encode(s, width, period)
    assert payload == ref.encode(s, width, period, wide=True)
    assert payload.startswith(ref.header(period))  # period <= 255: one byte; above: 0, 1, varint
    assert ref.decode(payload, n, width) == [int(x) for x in s]
    assert np.array_equal(native_range().decode(payload, n, width), s)


def test_blob_round_trip_all_decoders_agree(native, library):
    from onnx_udc.native import NativeDecoder

    rng = np.random.default_rng(3)
    for step_rel, width in ((0.2, 1), (0.01, 2), (1e-7, 4)):
        w = rng.standard_normal((17, 40)).astype(np.float32)
        result = encode_tensor(w, coder="range", config=StepConfig(step_rel=step_rel), seed=5)
        assert result.header.coder == 2 and result.header.symbol_width == width
        a = decode_blob(result.blob)
        b = NativeDecoder(library).decode(result.blob)
        c = decode_blob(encode_tensor(w, coder="store", config=StepConfig(step_rel=step_rel), seed=5).blob)
        assert a.tobytes() == b.tobytes() == c.tobytes()


def test_rate_is_near_the_order0_entropy_where_brotli_is_not(native):
    rng = np.random.default_rng(7)
    s = laplace_symbols(rng, 50_000, 40.0, 2)  # two-byte symbols: brotli's weak spot
    h = symbol_entropy(s) * s.size
    range_bits = 8 * len(native.encode(s, 2, 1))
    brotli_bits = 8 * len(by_name("brotli").encode(s, 2))
    assert range_bits < 1.01 * h < brotli_bits


def test_period_context_helps_vectors_with_unequal_coordinates(native):
    rng = np.random.default_rng(11)
    q = np.rint(rng.laplace(size=(20_000, 4)) * np.array([0.5, 4, 30, 200])).astype(np.int64).ravel()
    s = ((q << 1) ^ (q >> 63)).astype(np.uint64)
    assert len(native.encode(s, 2, 4)) < 0.97 * len(native.encode(s, 2, 1))


def test_row_period_is_tried_and_kept_only_when_shorter(native):
    from onnx_udc.coders.range_coder import candidates

    assert candidates(1, 0) == [(1, 1)] and candidates(300, 0) == [(255, 1)] and candidates(4, 4) == [(4, 1), (4, 2)]
    assert candidates(1, 300) == [(1, 1), (300, 1)] and candidates(1, (1 << 20) + 1) == [(1, 1)]
    assert candidates(8, 96) == [(8, 1), (96, 1), (8, 2)] and candidates(9, 0) == [(9, 1)]
    rng = np.random.default_rng(13)
    scales = np.exp(rng.uniform(-3, 3, 400))  # one scale per column (input feature)
    q = np.rint(rng.laplace(size=(60, 400)) * scales).astype(np.int64).ravel()
    s = ((q << 1) ^ (q >> 63)).astype(np.uint64)
    coder = by_name("range")
    best, legacy = coder.encode(s, 2, 1, row=400), coder.encode(s, 2, 1)
    assert best[:3] == b"\x00\x01\x90" and len(best) < 0.95 * len(legacy)  # varint 400 = 90 03
    assert np.array_equal(coder.decode(best, s.size, 2), s) and ref.decode(best, s.size, 2) == s.tolist()
    iid = laplace_symbols(rng, 4000, 3.0, 1)  # no column structure: the row period does not pay
    assert coder.encode(iid, 1, 1, row=400) == coder.encode(iid, 1, 1) == native.encode(iid, 1, 1)


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([1, 2, 4]), st.integers(0, 300), st.integers(1, 8), st.floats(0.01, 1e4), st.integers(0, 2**32))
def test_position_models_variant_matches_reference(width, n, period, scale, seed):
    rng = np.random.default_rng(seed)
    s = laplace_symbols(rng, n, scale, width)  # uint64 [n]
    from onnx_udc.native import native_range

    payload = native_range().encode(s, width, period, 2)
    assert payload == ref.encode(s, width, period, variant=2) and payload[:3] == bytes([0, 2, period])
    assert ref.decode(payload, n, width) == [int(x) for x in s]
    assert np.array_equal(native_range().decode(payload, n, width), s)


def test_position_models_pay_for_the_halved_d4_coordinate(native):
    from onnx_udc import quantizers
    from onnx_udc.quantizers.lattice import LatticeConfig

    w = np.random.default_rng(19).standard_normal(1 << 15).astype(np.float32)
    encoded = quantizers.by_name("d4").encode(w, LatticeConfig(step_rel=0.05), 1)
    coder = by_name("range")
    best = coder.encode(encoded.symbols, encoded.symbol_width, encoded.period)
    shared = native.encode(encoded.symbols, encoded.symbol_width, encoded.period)  # one model set
    assert best[:3] == b"\x00\x02\x04" and len(best) < 0.995 * len(shared)
    assert np.array_equal(coder.decode(best, encoded.symbols.size, encoded.symbol_width), encoded.symbols)


def test_encode_tensor_passes_the_row_length():
    from onnx_udc.codec import row_length
    from onnx_udc.quantizers import by_name as quantizer

    w = np.zeros((3, 4, 5), np.float32)
    assert row_length(w, quantizer("raw").encode(w, None, 0)) == 20
    assert row_length(w.ravel(), quantizer("raw").encode(w.ravel(), None, 0)) == 0
    rng = np.random.default_rng(17)
    w = (rng.laplace(size=(50, 300)) * np.exp(rng.uniform(-3, 3, 300))).astype(np.float32)
    blob = encode_tensor(w, coder="range", config=StepConfig(step_rel=0.05), seed=1)
    from onnx_udc.format import parse_blob

    assert parse_blob(blob.blob)[1][:2] == b"\x00\x01"
    assert decode_blob(blob.blob).tobytes() == decode_blob(encode_tensor(w, coder="store", config=StepConfig(step_rel=0.05), seed=1).blob).tobytes()


def _corrupt(native, payload, numel, width):
    with pytest.raises(FormatError) as info:
        native.decode(payload, numel, width)
    assert info.value.status == "CORRUPT_PAYLOAD"
    with pytest.raises(ref.CorruptPayload):
        ref.decode(payload, numel, width)


def test_hostile_payloads_are_rejected_by_both_decoders(native):
    rng = np.random.default_rng(5)
    s = laplace_symbols(rng, 500, 3.0, 1)
    good = native.encode(s, 1, 1)
    _corrupt(native, b"", 500, 1)  # no period byte
    _corrupt(native, b"\x00" + good[1:], 500, 1)  # period 0
    _corrupt(native, good + b"\x00", 500, 1)  # trailing zero byte
    _corrupt(native, good + b"\x01" * 4, 500, 1)  # bytes the decoder never needs
    _corrupt(native, b"\x01\x05", 0, 1)  # stream bytes for no symbols
    _corrupt(native, b"\x01\xff\xff\xff\xff", 3, 1)  # starts outside the interval
    # the extended header (0, variant, varint period)
    wide = native.encode(s, 1, 300)
    assert wide[:4] == b"\x00\x01\xac\x02" and native.decode(wide, 500, 1).tolist() == s.tolist()
    for bad in (b"\x00", b"\x00\x03\x05", b"\x00\x00\x05", b"\x00\x02\x09", b"\x00\x02\x00",  # variant 2: 1..8 b"\x00\x01", b"\x00\x01\x80",  # truncated / unknown variant
                b"\x00\x01\x00", b"\x00\x01\x81\x80\x40", b"\x00\x01\x80\x80\x80\x01",  # period 0, > 2^20, > 3 bytes
                b"\x00\x01\x85\x00"):  # an empty last varint group
        _corrupt(native, bad + wide[4:], 500, 1)
        _corrupt(native, bad, 0, 1)
    assert native.decode(b"\x00\x01\x80\x80\x40", 0, 1).size == 0  # period 2^20 itself is fine
    _corrupt(native, wide[:-1] + b"\x00", 500, 1)
    # the one symbol the syntax can express beyond the width: magnitude 2^(8w-1), positive
    for width in (1, 2, 4):
        top = 1 << (8 * width)
        assert native.decode(ref.encode([3, top - 1], width), 2, width).tolist() == [3, top - 1]
        _corrupt(native, ref.encode([3, top], width, check=False), 2, width)


def test_random_payloads_never_crash_and_agree_with_the_reference(native):
    rng = np.random.default_rng(9)
    for trial in range(300):
        width = int(rng.choice([1, 2, 4]))
        numel = int(rng.integers(0, 40))
        head = [bytes([int(rng.integers(1, 4))]), b"\x00\x01" + bytes([int(rng.integers(1, 128))]),
                b"\x00\x02" + bytes([int(rng.integers(1, 9))]),
                rng.integers(0, 256, int(rng.integers(0, 5)), dtype=np.uint8).tobytes()][trial % 4]
        payload = head + rng.integers(0, 256, int(rng.integers(0, 12)), dtype=np.uint8).tobytes()
        try:
            expected = ref.decode(payload, numel, width)
        except ref.CorruptPayload:
            expected = None
        try:
            got = native.decode(payload, numel, width).tolist()
        except FormatError as exc:
            assert exc.status == "CORRUPT_PAYLOAD"
            got = None
        assert got == expected, (trial, payload, numel, width)


def test_missing_library_raises_runtime_library_error(monkeypatch, tmp_path):
    import onnx_udc.native as runtime

    runtime.native_range.cache_clear()
    monkeypatch.setenv(runtime.LIBRARY_ENV, str(tmp_path / "nope.so"))
    try:
        with pytest.raises(RuntimeLibraryError, match="does not exist"):
            by_name("range").encode(np.zeros(4, np.uint8), 1)
    finally:
        runtime.native_range.cache_clear()


def test_golden_range_blobs_decode_with_the_reference():
    import json
    from pathlib import Path

    from onnx_udc.format import parse_blob
    from onnx_udc.format.symbols import to_planar

    golden = Path(__file__).resolve().parent / "golden"
    cases = [c for c in json.loads((golden / "manifest.json").read_text()) if c["name"].endswith("_range")]
    assert len(cases) >= 6 and {parse_blob((golden / f"{c['name']}.blob").read_bytes())[0].symbol_width for c in cases} == {1, 2, 4}
    for case in cases:
        blob = (golden / f"{case['name']}.blob").read_bytes()
        header, payload = parse_blob(blob)
        symbols = ref.decode(payload, header.numel, header.symbol_width)
        native = by_name("range").decode(payload, header.numel, header.symbol_width)
        assert to_planar(np.array(symbols, dtype=np.uint64), header.symbol_width) == to_planar(native, header.symbol_width)
