"""Coder 3, rans (FORMAT.md 5.3): the C++ encoder and decoder against the independent
Python reference (tests/rans_reference.py), every parameter, hostile payloads."""

from __future__ import annotations

import numpy as np
import pytest

from onnx_udc import codec, coders
from onnx_udc.errors import FormatError, UdcError
from onnx_udc.quantizers.base import StepConfig

import rans_reference

native = pytest.importorskip("onnx_udc.native")
try:
    NR = native.native_rans()
except Exception as exc:  # noqa: BLE001
    pytest.skip(f"native library: {exc}", allow_module_level=True)


def symbols(kind: str, n: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "geometric":
        s = rng.geometric(0.08, n) - 1
    elif kind == "wide":
        s = rng.integers(0, 1 << (8 * width) if width < 4 else 1 << 32, n, dtype=np.uint64)
    elif kind == "rows":  # rows of different scales: what the contexts are for
        scale = np.repeat(np.exp(rng.normal(0, 1.2, size=-(-n // 64))), 64)[:n]
        q = np.rint(rng.laplace(size=n) * scale * 4).astype(np.int64)
        s = np.where(q < 0, -2 * q - 1, 2 * q)
    else:
        s = np.full(n, 7)
    return np.minimum(s, (1 << (8 * width)) - 1).astype(np.uint32)


@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("kind", ["geometric", "wide", "rows", "constant"])
@pytest.mark.parametrize("n", [0, 1, 37, 3000])
def test_roundtrip_matches_reference(width, kind, n):
    s = symbols(kind, n, width, seed=n + width)
    payload = NR.encode(s, width)
    assert np.array_equal(NR.decode(payload, n, width), s)
    assert rans_reference.decode(payload, n, width) == s.tolist()


@pytest.mark.parametrize("lanes,prob_bits,contexts,shift", [
    (1, 8, 1, 1), (3, 15, 16, 8), (8, 12, 6, 4), (32, 10, 2, 2), (5, 9, 16, 1), (4, 11, 3, 5)])
def test_forced_parameters(lanes, prob_bits, contexts, shift):
    s = symbols("rows", 2500, 2, seed=lanes)
    payload = NR.encode(s, 2, lanes=lanes, prob_bits=prob_bits, contexts=contexts, shift=shift)
    assert list(payload[:5]) == [1, lanes, prob_bits, contexts, shift]
    assert np.array_equal(NR.decode(payload, s.size, 2), s)
    assert rans_reference.decode(payload, s.size, 2) == s.tolist()


def test_contexts_pay_on_scaled_rows():
    s = symbols("rows", 1 << 16, 2)
    chosen = len(NR.encode(s, 2))
    order0 = len(NR.encode(s, 2, contexts=1))
    assert chosen < 0.97 * order0


def test_bad_parameters_and_symbols():
    with pytest.raises(UdcError):
        NR.encode(np.array([300], np.uint32), 1)
    with pytest.raises(UdcError):
        NR.encode(np.array([1], np.uint32), 1, lanes=33)


def test_hostile_payloads_are_corrupt_never_a_crash():
    s = symbols("rows", 4000, 1, seed=3)
    payload = bytearray(NR.encode(s, 1))
    rng = np.random.default_rng(0)
    outcomes = set()
    for trial in range(600):
        p = bytearray(payload)
        if trial % 3 == 0:
            p = p[: rng.integers(0, len(p))]
        else:
            for _ in range(1 + trial % 4):
                p[rng.integers(0, len(p))] ^= 1 << int(rng.integers(0, 8))
        try:
            got = NR.decode(bytes(p), s.size, 1)
            outcomes.add("ok")
            assert rans_reference.decode(bytes(p), s.size, 1) == got.tolist()
        except FormatError as exc:
            assert exc.status == "CORRUPT_PAYLOAD"
            outcomes.add("corrupt")
            with pytest.raises(rans_reference.Corrupt):
                rans_reference.decode(bytes(p), s.size, 1)
    assert "corrupt" in outcomes
    # trailing garbage, a missing word, a wrong numel
    with pytest.raises(FormatError):
        NR.decode(bytes(payload) + b"\0\0", s.size, 1)
    with pytest.raises(FormatError):
        NR.decode(bytes(payload[:-2]), s.size, 1)
    with pytest.raises(FormatError):
        NR.decode(bytes(payload), s.size + 1, 1)


def test_blob_roundtrip_python_and_native_decoders():
    rng = np.random.default_rng(5)
    w = (rng.standard_normal((64, 300)) * np.exp(rng.normal(0, 1, (64, 1)))).astype(np.float32)
    for step in (0.3, 0.01):
        q = codec.quantize(w, "scalar", StepConfig(step_rel=step), 0)
        blob = codec.pack(q, "rans").blob
        ref = codec.dequantize(q)
        assert np.array_equal(codec.decode_blob(blob), ref)
        assert np.array_equal(native.native_decoder().decode(blob), ref)


def test_registered():
    assert "rans" in coders.names() and coders.by_id(3).name == "rans"
